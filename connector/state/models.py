"""The model in force per CRM (`leadscore rescore` applies one; the worker scores with it)."""

from __future__ import annotations

from collections import Counter
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


# every stored score by model, the rows in table order (`stored_models`)
_STORED_MODELS = (
    "SELECT model_version, model_fingerprint, count(*) FROM scores NOT INDEXED WHERE crm = ? "
    "GROUP BY model_version, model_fingerprint"
)
# the stored scores of contacts archived or merged away, by model: the contacts in table order
# (1M contacts: 0.1-0.7 s; they are few, and no index holds them)
_STORED_MODELS_GONE = (
    "SELECT s.model_version, s.model_fingerprint, count(*) FROM contacts c NOT INDEXED "
    "JOIN scores s ON s.crm = c.crm AND s.contact_id = c.id WHERE c.crm = ? "
    "AND (c.archived_at IS NOT NULL OR c.merged_into IS NOT NULL) "
    "GROUP BY s.model_version, s.model_fingerprint"
)


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
        """(model version, fingerprint, how many stored scores of live contacts) per model,
        most used first.

        The score rows are read in table order (`NOT INDEXED`): no index holds the model, and
        SQLite would otherwise walk the due index and fetch every row out of order (1M
        contacts: 10-30 s against ~3 s; every CLI command that scores runs this when it
        opens). A contact archived or merged away keeps its stored score and is left out,
        counted apart from the few such contacts."""
        counts: Counter[tuple[str, str]] = Counter()
        for v, fp, n in self._conn.execute(_STORED_MODELS, (crm,)):
            counts[(str(v), str(fp or ""))] += int(n)
        for v, fp, n in self._conn.execute(_STORED_MODELS_GONE, (crm,)):
            counts[(str(v), str(fp or ""))] -= int(n)
        ranked = sorted(((n, v, fp) for (v, fp), n in counts.items() if n > 0),
                        key=lambda x: (-x[0], x[1]))  # fmt: skip
        return [(v, fp, n) for n, v, fp in ranked]

    @_db_errors
    def set_other_models_due(self, crm: str, fingerprint: str, at: datetime) -> int:
        """Make the stored scores of the live contacts of every model but `fingerprint` due at
        `at` (the next pass rescores them: a new state DB's first real run after a dry run
        with another model; an archived or merged-away contact is never rescored, so never
        made due). Returns how many."""
        with self.transaction():
            cur = self._conn.execute(
                "UPDATE scores SET next_change_at = ?1 WHERE crm = ?2 "
                "AND model_fingerprint IS NOT ?3 AND contact_id IN (SELECT id FROM contacts "
                "WHERE crm = ?2 AND archived_at IS NULL AND merged_into IS NULL)",
                (encode_dt(at), crm, fingerprint),
            )
        return cur.rowcount
