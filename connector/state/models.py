"""The model in force per CRM (`leadscore rescore` applies one; the worker scores with it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connector.state.base import StoreBase, _db_errors
from connector.state.codec import decode_dt, encode_dt


@dataclass(frozen=True, slots=True)
class ActiveModel:
    """The model in force for one CRM (`set_active_model`): what every scoring command uses."""

    crm: str
    version: str
    fingerprint: str
    content: str  # normalized model + title rules, JSON (connector.model.snapshot)
    model_yaml: str | None  # the model file's text as applied
    source_path: str
    applied_at: datetime
    applied_by: str  # "rescore" (a rollout) or "first sync"


class ModelsMixin(StoreBase):
    """The active model records."""

    # -- the model in force ----------------------------------------------------------------

    @_db_errors
    def get_active_model(self, crm: str) -> ActiveModel | None:
        row = self._conn.execute(
            "SELECT crm, version, fingerprint, content, model_yaml, source_path, applied_at, "
            "applied_by FROM active_model WHERE crm = ?",
            (crm,),
        ).fetchone()
        if row is None:
            return None
        return ActiveModel(
            crm=row[0],
            version=row[1],
            fingerprint=row[2],
            content=row[3],
            model_yaml=row[4],
            source_path=row[5],
            applied_at=decode_dt(row[6]),
            applied_by=row[7],
        )

    @_db_errors
    def set_active_model(self, active: ActiveModel) -> None:
        """Make `active` the model in force for its CRM (replacing the previous one)."""
        with self.transaction():
            self._conn.execute(
                "INSERT INTO active_model (crm, version, fingerprint, content, model_yaml, "
                "source_path, applied_at, applied_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (crm) DO UPDATE SET version = excluded.version, "
                "fingerprint = excluded.fingerprint, content = excluded.content, "
                "model_yaml = excluded.model_yaml, source_path = excluded.source_path, "
                "applied_at = excluded.applied_at, applied_by = excluded.applied_by",
                (
                    active.crm,
                    active.version,
                    active.fingerprint,
                    active.content,
                    active.model_yaml,
                    active.source_path,
                    encode_dt(active.applied_at),
                    active.applied_by,
                ),
            )

    @_db_errors
    def stored_models(self, crm: str) -> list[tuple[str, str, int]]:
        """(model version, fingerprint, how many stored scores) per model, most used first."""
        rows = self._conn.execute(
            "SELECT model_version, model_fingerprint, count(*) FROM scores WHERE crm = ? "
            "GROUP BY model_version, model_fingerprint ORDER BY count(*) DESC, model_version",
            (crm,),
        ).fetchall()
        return [(str(v), str(fp or ""), int(n)) for v, fp, n in rows]
