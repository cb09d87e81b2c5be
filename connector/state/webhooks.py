"""HubSpot webhook event ids already handled, kept across restarts (a retried delivery after a
restart is acknowledged, not processed again); pruned by age and count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from connector.state.base import StoreBase, _db_errors
from connector.state.codec import encode_dt, encode_json


class WebhookEventsMixin(StoreBase):
    @_db_errors
    def seen_webhook_events(self, event_ids: Sequence[str]) -> set[str]:
        """The ones of `event_ids` already recorded (handled before, maybe by an earlier
        process)."""
        if not event_ids:
            return set()
        rows = self._conn.execute(
            "SELECT event_id FROM webhook_events "
            "WHERE event_id IN (SELECT value FROM json_each(?))",
            (encode_json(list(event_ids)),),
        ).fetchall()
        return {str(r[0]) for r in rows}

    @_db_errors
    def remember_webhook_events(self, event_ids: Sequence[str], at: datetime) -> None:
        """Record handled event ids (an id already there keeps its first time)."""
        if not event_ids:
            return
        stamp = encode_dt(at)
        with self.transaction():
            self._conn.executemany(
                "INSERT OR IGNORE INTO webhook_events (event_id, received_at) VALUES (?, ?)",
                [(e, stamp) for e in event_ids],
            )

    @_db_errors
    def prune_webhook_events(self, older_than: datetime, keep_at_most: int) -> int:
        """Forget the ids received before `older_than`, then all but the newest
        `keep_at_most`; how many were forgotten."""
        with self.transaction():
            gone = self._conn.execute(
                "DELETE FROM webhook_events WHERE received_at < ?", (encode_dt(older_than),)
            ).rowcount
            gone += self._conn.execute(
                "DELETE FROM webhook_events WHERE event_id IN (SELECT event_id FROM "
                "webhook_events ORDER BY received_at DESC, event_id DESC LIMIT -1 OFFSET ?)",
                (max(0, keep_at_most),),
            ).rowcount
        return int(gone)
