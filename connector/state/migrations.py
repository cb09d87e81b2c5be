"""Numbered schema migrations: small functions `mNNN_name(db)`, applied in order, each recorded
in the `migrations` table in the same transaction as its DDL.

To change the schema, append a new function (never edit an applied one) and add it to
`MIGRATIONS`. A DB that records a version above `SCHEMA_VERSION` was written by a newer
leadscore and is refused rather than misread.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from sqlite_utils import Database

from connector.errors import StateError
from connector.state.codec import encode_dt

Migration = Callable[[Database], None]


def m001_initial(db: Database) -> None:
    """Every table of the first release."""
    db.create_table(
        "contacts",
        {
            "crm": str,
            "id": str,
            "email": str,
            "first_name": str,
            "last_name": str,
            "job_title": str,
            "company_name": str,
            "country": str,
            "lifecycle_stage": str,
            "lead_status": str,
            "lead_status_changed_at": str,
            "recycled_at": str,
            "mql_at": str,
            "created_at": str,
            "updated_at": str,
            "properties": str,  # JSON object, NULL when empty
            "archived_at": str,
            "merged_into": str,
            "merged_at": str,
            "first_seen_at": str,
            "last_pulled_at": str,
        },
        pk=("crm", "id"),
        not_null=("crm", "id", "first_seen_at"),
    )
    # Expression index: lookups must say `lower(email)` (SQLite lower() folds ASCII only).
    db.execute("CREATE INDEX contacts_crm_email ON contacts (crm, lower(email))")
    # Partial, so that the planner never prefers it for `merged_into IS NULL` (every live row).
    db.execute(
        "CREATE INDEX contacts_crm_merged_into ON contacts (crm, merged_into) "
        "WHERE merged_into IS NOT NULL"
    )

    db.create_table(
        "events",
        {
            "crm": str,
            "source": str,
            "source_id": str,
            "contact_id": str,
            "type": str,
            "occurred_at": str,
            "attributes": str,  # JSON object, NULL when empty
        },
        not_null=("crm", "source", "source_id", "contact_id", "type", "occurred_at"),
    )
    db.table("events").create_index(["crm", "source", "source_id"], "events_key", unique=True)
    db.table("events").create_index(["crm", "contact_id", "occurred_at"], "events_crm_contact_time")

    db.create_table(
        "companies",
        {
            "domain": str,
            "status": str,  # hit | miss
            "company": str,  # JSON of connector.types.Company, NULL for a miss
            "source": str,
            "fetched_at": str,
            "expires_at": str,
        },
        pk="domain",
        not_null=("domain", "status", "fetched_at", "expires_at"),
    )

    db.create_table(
        "scores",
        {
            "crm": str,
            "contact_id": str,
            "score": float,
            "engagement_points": float,
            "fit_points": float,
            "grade": str,
            "mql": int,
            "mql_reason": str,
            "current_stage": str,
            "target_stage": str,
            "recycled": int,
            "lifecycle_note": str,
            "profile_mismatch": int,
            "hand_raiser": int,
            "model_version": str,
            "model_fingerprint": str,
            "scored_at": str,
            "next_change_at": str,
            "reasons": str,  # JSON list of Reason objects
        },
        pk=("crm", "contact_id"),
        not_null=("crm", "contact_id", "score", "grade", "mql", "model_version", "scored_at"),
    )
    db.table("scores").create_index(["crm", "next_change_at"], "scores_crm_next_change")

    db.create_table(
        "score_history",
        {
            "id": int,
            "crm": str,
            "contact_id": str,
            "model_version": str,
            "score": float,
            "grade": str,
            "mql": int,
            "scored_at": str,
        },
        pk="id",
        not_null=("crm", "contact_id", "model_version", "score", "grade", "mql", "scored_at"),
    )
    db.table("score_history").create_index(
        ["crm", "contact_id", "scored_at"], "score_history_crm_contact_time"
    )

    db.create_table(
        "written",
        {"crm": str, "contact_id": str, "property": str, "value": str, "written_at": str},
        pk=("crm", "contact_id", "property"),
        not_null=("crm", "contact_id", "property", "value", "written_at"),
    )

    db.create_table(
        "cursors",
        {"crm": str, "stream": str, "value": str, "updated_at": str},
        pk=("crm", "stream"),
        not_null=("crm", "stream", "value", "updated_at"),
    )

    db.create_table(
        "runs",
        {
            "id": int,
            "crm": str,
            "kind": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "counts": str,  # JSON object
            "api_calls": int,
            "errors": int,
            "message": str,
        },
        pk="id",
        not_null=("crm", "kind", "started_at", "status"),
    )
    db.table("runs").create_index(["crm", "kind", "status"], "runs_crm_kind_status")

    db.create_table(
        "dead_letters",
        {
            "id": int,
            "crm": str,
            "contact_id": str,  # '' when the failure is not about one contact
            "kind": str,  # write | input | event | ...
            "payload": str,  # JSON, secrets redacted
            "reason": str,
            "attempts": int,
            "first_seen_at": str,
            "last_tried_at": str,
            "resolved_at": str,
        },
        pk="id",
        not_null=("crm", "contact_id", "kind", "attempts", "first_seen_at", "last_tried_at"),
        defaults={"contact_id": "", "attempts": 1},
    )
    # At most one open dead letter per (crm, kind, contact): a repeat failure bumps `attempts`.
    db.execute(
        "CREATE UNIQUE INDEX dead_letters_open ON dead_letters (crm, kind, contact_id) "
        "WHERE resolved_at IS NULL"
    )

    db.create_table(
        "jobs",
        {"name": str, "state": str, "updated_at": str},
        pk="name",
        not_null=("name", "state", "updated_at"),
    )


def m002_write_backlog(db: Database) -> None:
    """Contacts whose computed values have not reached the CRM yet (a quota stop, a crash
    between scoring and writing): the next sync writes them even if nothing else changed."""
    db.execute(
        "CREATE TABLE write_backlog (crm TEXT NOT NULL, contact_id TEXT NOT NULL, "
        "PRIMARY KEY (crm, contact_id)) WITHOUT ROWID"
    )


def m003_score_history_triggers(db: Database) -> None:
    """`score_history` gets a row when a contact's score, grade, MQL flag or model version
    changes: appended by SQLite itself, from the upsert of the current score (it has the old
    row at hand; a separate look-up per contact cost a full rescore ~3% of its time).

    The triggers this migration first created were replaced by m004's (which add the stage)
    and are no longer created here: m004 always runs with it (`apply` runs every pending
    migration in one transaction), drops any old ones and creates `_HISTORY_TRIGGERS`."""


def m004_score_history_stage(db: Database) -> None:
    """Each history row keeps the contact's lifecycle stage when it was scored: a contact the
    model called an MQL only after sales had made it an SQL did not go through MQL (the
    report's funnel). Rows from before have no stage."""
    db.execute("ALTER TABLE score_history ADD COLUMN stage TEXT")
    db.execute("DROP TRIGGER IF EXISTS scores_history_insert")
    db.execute("DROP TRIGGER IF EXISTS scores_history_update")
    for trigger in _HISTORY_TRIGGERS:
        db.execute(trigger)


def m005_live_contacts_index(db: Database) -> None:
    """An index of the live contacts (neither archived nor merged) by id: counting them, and
    cutting them into the id ranges of a parallel rescore, read this index instead of every
    contact row (0.18 s → 0.03 s a count at a million contacts; a rescore counted three
    times and walked half the table for each cut)."""
    db.execute(_LIVE_CONTACTS_INDEX)


def m006_active_model(db: Database) -> None:
    """The model in force, one per CRM: what `leadscore rescore` applied last (or, before any
    rollout, the model the first sync used). `content` is the model's normalized content with
    its title rules (JSON, what the fingerprint hashes): the worker rebuilds exactly that model
    from it without the original file; `model_yaml` is the file's text as applied, for people."""
    db.execute(
        "CREATE TABLE active_model (crm TEXT NOT NULL PRIMARY KEY, version TEXT NOT NULL, "
        "fingerprint TEXT NOT NULL, content TEXT NOT NULL, model_yaml TEXT, "
        "source_path TEXT NOT NULL, applied_at TEXT NOT NULL, applied_by TEXT NOT NULL)"
    )


def m008_accounts(db: Database) -> None:
    """Account-based scoring (issue 21). Independent of any other migration: its own tables.

    - `crm_companies`: the CRM's company records (firmographics, archived/merged state), apart
      from the enrichment cache `companies` (keyed by domain);
    - `contact_accounts`: each contact's account key (`company:<id>` or `domain:<domain>`),
      where it came from, and every company id it is associated with (several: primary wins);
    - `account_scores` (+ `account_score_history` by trigger): the current account score;
    - `account_written`: the company property values last written (diff-only);
    - `accounts_due`: the persisted backlog of accounts to rescore (a stop loses none)."""
    db.execute(
        "CREATE TABLE crm_companies (crm TEXT NOT NULL, id TEXT NOT NULL, domain TEXT, "
        "name TEXT, industry TEXT, employee_count INTEGER, annual_revenue_usd REAL, "
        "country TEXT, archived_at TEXT, merged_into TEXT, updated_at TEXT, properties TEXT, "
        "pulled_at TEXT NOT NULL, PRIMARY KEY (crm, id))"
    )
    db.execute("CREATE INDEX crm_companies_domain ON crm_companies (crm, lower(domain))")
    db.execute(
        "CREATE TABLE contact_accounts (crm TEXT NOT NULL, contact_id TEXT NOT NULL, "
        "account_id TEXT NOT NULL, source TEXT NOT NULL, company_ids TEXT, "
        "updated_at TEXT NOT NULL, PRIMARY KEY (crm, contact_id)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX contact_accounts_account ON contact_accounts (crm, account_id)")
    db.execute(
        "CREATE TABLE account_scores (crm TEXT NOT NULL, account_id TEXT NOT NULL, "
        "company_id TEXT, domain TEXT, name TEXT, score REAL NOT NULL, "
        "engagement_points REAL NOT NULL, fit_points REAL NOT NULL, grade TEXT NOT NULL, "
        "mqa INTEGER NOT NULL, mqa_reason TEXT, members INTEGER NOT NULL, "
        "engaged_contacts TEXT NOT NULL, reasons TEXT NOT NULL, model_version TEXT NOT NULL, "
        "model_fingerprint TEXT NOT NULL, scored_at TEXT NOT NULL, next_change_at TEXT, "
        "PRIMARY KEY (crm, account_id))"
    )
    db.execute("CREATE INDEX account_scores_next ON account_scores (crm, next_change_at)")
    db.execute("CREATE INDEX account_scores_score ON account_scores (crm, score DESC)")
    db.execute(
        "CREATE TABLE account_score_history (id INTEGER PRIMARY KEY, crm TEXT NOT NULL, "
        "account_id TEXT NOT NULL, model_version TEXT NOT NULL, score REAL NOT NULL, "
        "grade TEXT NOT NULL, mqa INTEGER NOT NULL, scored_at TEXT NOT NULL)"
    )
    db.execute(
        "CREATE INDEX account_score_history_key ON account_score_history "
        "(crm, account_id, scored_at)"
    )
    db.execute(
        "CREATE TRIGGER account_scores_history_insert AFTER INSERT ON account_scores "
        "BEGIN INSERT INTO account_score_history "
        "(crm, account_id, model_version, score, grade, mqa, scored_at) VALUES "
        "(NEW.crm, NEW.account_id, NEW.model_version, NEW.score, NEW.grade, NEW.mqa, "
        "NEW.scored_at); END"
    )
    db.execute(
        "CREATE TRIGGER account_scores_history_update AFTER UPDATE ON account_scores "
        "WHEN OLD.score IS NOT NEW.score OR OLD.grade IS NOT NEW.grade "
        "OR OLD.mqa IS NOT NEW.mqa OR OLD.model_version IS NOT NEW.model_version "
        "BEGIN INSERT INTO account_score_history "
        "(crm, account_id, model_version, score, grade, mqa, scored_at) VALUES "
        "(NEW.crm, NEW.account_id, NEW.model_version, NEW.score, NEW.grade, NEW.mqa, "
        "NEW.scored_at); END"
    )
    db.execute(
        "CREATE TABLE account_written (crm TEXT NOT NULL, company_id TEXT NOT NULL, "
        "property TEXT NOT NULL, value TEXT NOT NULL, written_at TEXT NOT NULL, "
        "PRIMARY KEY (crm, company_id, property)) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TABLE accounts_due (crm TEXT NOT NULL, account_id TEXT NOT NULL, "
        "reason TEXT, PRIMARY KEY (crm, account_id)) WITHOUT ROWID"
    )


# The history triggers (m003, with the stage since m004): one on insert, one on an update
# that changes the score, grade, MQL flag or model version.
_HISTORY_TRIGGERS = (
    "CREATE TRIGGER scores_history_insert AFTER INSERT ON scores "
    "BEGIN INSERT INTO score_history "
    "(crm, contact_id, model_version, score, grade, mql, scored_at, stage) VALUES "
    "(NEW.crm, NEW.contact_id, NEW.model_version, NEW.score, NEW.grade, NEW.mql, "
    "NEW.scored_at, NEW.current_stage); END",
    "CREATE TRIGGER scores_history_update AFTER UPDATE ON scores "
    "WHEN OLD.score IS NOT NEW.score OR OLD.grade IS NOT NEW.grade "
    "OR OLD.mql IS NOT NEW.mql OR OLD.model_version IS NOT NEW.model_version "
    "BEGIN INSERT INTO score_history "
    "(crm, contact_id, model_version, score, grade, mql, scored_at, stage) VALUES "
    "(NEW.crm, NEW.contact_id, NEW.model_version, NEW.score, NEW.grade, NEW.mql, "
    "NEW.scored_at, NEW.current_stage); END",
)

# the WHERE of a query must repeat this one's for SQLite to use the index (the queries use the
# `live` column of connector.state.base.CONTACTS_VIEW, which is this condition)
_LIVE_CONTACTS_INDEX = (
    "CREATE INDEX IF NOT EXISTS contacts_live ON contacts (crm, id) "
    "WHERE archived_at IS NULL AND merged_into IS NULL"
)


def m007_webhook_events(db: Database) -> None:
    """The webhook event ids already handled (HubSpot's `eventId`), with when they were
    received: a redelivery after a restart is acknowledged, not processed again. Kept for a
    bounded time and number (`StateStore.prune_webhook_events`). A table of its own: it
    depends on no other migration."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS webhook_events "
        "(event_id TEXT PRIMARY KEY, received_at TEXT NOT NULL) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX IF NOT EXISTS webhook_events_received ON webhook_events (received_at)")


def m009_score_priority(db: Database) -> None:
    """The priority label of each current score (grade + engagement band, `A1` … `D3`), what
    the CRM's priority property shows. Scores saved before have none ("") until rescored."""
    db.execute("ALTER TABLE scores ADD COLUMN priority TEXT")


def m010_named_scores(db: Database) -> None:
    """The named scores of a model with several (`scores:` in the model file; issue 23): one
    row per contact and score name, beside the lifecycle score in `scores`. What was written
    of them to the CRM is in `written` like any other property. No index besides the key:
    a full rescore upserts every row; only `report --score` reads all of one score's rows."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS named_scores ("
        "crm TEXT NOT NULL, contact_id TEXT NOT NULL, score_name TEXT NOT NULL, "
        "score REAL NOT NULL, engagement_points REAL NOT NULL, fit_points REAL NOT NULL, "
        "grade TEXT NOT NULL, priority TEXT NOT NULL, qualified INTEGER NOT NULL, "
        "reasons TEXT NOT NULL, model_version TEXT NOT NULL, model_fingerprint TEXT NOT NULL, "
        "scored_at TEXT NOT NULL, PRIMARY KEY (crm, contact_id, score_name)) WITHOUT ROWID"
    )


def m011_account_model_index(db: Database) -> None:
    """The accounts by the model that scored them: every sync with accounts on asks for those
    of another model (`stale_account_ids`: a rollout rescores them), which scanned every
    account row and its reasons (~100 ms a sync at 100,000 accounts, the one part of an
    incremental sync that grew with the portal)."""
    db.execute(
        "CREATE INDEX IF NOT EXISTS account_scores_model "
        "ON account_scores (crm, model_fingerprint, account_id)"
    )


def m012_run_process(db: Database) -> None:
    """Who runs each run: its process's pid, host name and start (in clock ticks after boot,
    where the system tells it; a later process given the same pid, as a restarted container's
    pid 1, has another). `leadscore status` shows a `running` run whose process is gone as
    `interrupted`, and a process starting a run records that of the runs of its own host
    (`connector.state.runs`). Runs from before have none of the three: shown as they are.
    The partial index finds a host's unfinished runs (a few rows) without reading the
    table."""
    db.execute("ALTER TABLE runs ADD COLUMN pid INTEGER")
    db.execute("ALTER TABLE runs ADD COLUMN host TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN process_start INTEGER")
    db.execute("CREATE INDEX IF NOT EXISTS runs_running ON runs (host) WHERE status = 'running'")


def m013_mqa_index(db: Database) -> None:
    """The MQA accounts, a partial index (MQAs only): `status` and the worker's MQA gauge,
    after every run that scores an account, count them, which read every account row and
    its reasons (~0.4 s at 200,000 accounts, holding the worker's lock; 0.7 ms with it)."""
    db.execute("CREATE INDEX IF NOT EXISTS account_scores_mqa ON account_scores (crm) WHERE mqa")


def m014_dead_letter_dismissal(db: Database) -> None:
    """An admin dismisses a dead letter known and accepted (`leadscore dead-letters
    dismiss`): `dismissed_at` is when. `payload_hash` is the SHA-256 of the stored payload
    as canonical JSON (`connector.state.dead_letters.payload_hash`): the same record read
    again with the same payload leaves a dismissed dead letter as it is, a different one
    reopens it. Rows from before have neither: open as they were; one dismissed gets its
    hash then."""
    db.execute("ALTER TABLE dead_letters ADD COLUMN dismissed_at TEXT")
    db.execute("ALTER TABLE dead_letters ADD COLUMN payload_hash TEXT")


def m015_event_dead_letter_ids(db: Database) -> None:
    """An engagement record's input dead letter is kept under `event:<id>`
    (`connector.types.event_record_id`), as a company's is under `company:<id>`: under its
    bare id, a contact of the same number read cleanly resolved it (numeric Marketo activity
    and lead ids, HubSpot e-mail event ids). The ones kept before: those whose payload names
    a contact (an event's `contact_id`, a HubSpot event's `objectId`, a Marketo activity's
    `leadId`, an e-mail event's `recipient`: `ops.dead_letters.event_owner`)."""
    db.execute(
        "UPDATE dead_letters SET contact_id = 'event:' || contact_id WHERE kind = 'input' "
        "AND contact_id != '' AND contact_id NOT LIKE 'company:%' "
        "AND contact_id NOT LIKE 'event:%' AND json_valid(payload) "
        "AND json_type(payload) = 'object' AND ("
        "json_extract(payload, '$.contact_id') IS NOT NULL "
        "OR json_extract(payload, '$.objectId') IS NOT NULL "
        "OR json_extract(payload, '$.leadId') IS NOT NULL "
        "OR json_extract(payload, '$.recipient') IS NOT NULL)"
    )


def m016_run_heartbeat(db: Database) -> None:
    """When a running run last made progress (`connector.state.runs`: its start, then at the
    pipeline's safe points at most once a minute). `leadscore status` shows a run of another
    host or container, whose pid cannot be checked from here, `probably interrupted` once its
    heartbeat is 10 minutes old. Runs from before have none: 2 hours from their start, as
    before."""
    db.execute("ALTER TABLE runs ADD COLUMN heartbeat_at TEXT")


MIGRATIONS: tuple[Migration, ...] = (
    m001_initial,
    m002_write_backlog,
    m003_score_history_triggers,
    m004_score_history_stage,
    m005_live_contacts_index,
    m006_active_model,
    m007_webhook_events,
    m008_accounts,
    m009_score_priority,
    m010_named_scores,
    m011_account_model_index,
    m012_run_process,
    m013_mqa_index,
    m014_dead_letter_dismissal,
    m015_event_dead_letter_ids,
    m016_run_heartbeat,
)

_NAME = re.compile(r"^m(\d{3})_(\w+)$")


def _version(migration: Migration) -> tuple[int, str]:
    match = _NAME.match(migration.__name__)
    if match is None:  # pragma: no cover - guarded by the check below at import time
        raise ValueError(f"migration {migration.__name__} is not named mNNN_name")
    return int(match.group(1)), match.group(2)


_VERSIONS = [_version(m)[0] for m in MIGRATIONS]
# Numbered 1..N without gaps, in order: a DB records the numbers it has applied.
if list(range(1, len(_VERSIONS) + 1)) != _VERSIONS:  # pragma: no cover
    raise RuntimeError(f"migrations must be numbered 1..N in order, got {_VERSIONS}")

SCHEMA_VERSION = _VERSIONS[-1]


def applied_versions(db: Database, label: str) -> set[int]:
    """Versions recorded in `migrations`; an empty set for a new DB. Refuses a foreign DB."""
    tables = set(db.table_names())
    if "migrations" not in tables:
        if tables:
            raise StateError(
                f"state DB {label} is an SQLite database but not a leadscore state DB "
                f"(it has tables {', '.join(sorted(tables)[:5])} and no migrations table)"
            )
        return set()
    return {int(row[0]) for row in db.execute("SELECT version FROM migrations").fetchall()}


def check_not_newer(versions: set[int], label: str) -> None:
    newest = max(versions, default=0)
    if newest > SCHEMA_VERSION:
        raise StateError(
            f"state DB {label} has schema version {newest}, written by a newer leadscore; "
            f"this version knows up to {SCHEMA_VERSION}. Upgrade leadscore, or point "
            "LEADSCORE_STATE_PATH at another file."
        )


def pending(versions: set[int]) -> list[Migration]:
    return [m for m in MIGRATIONS if _version(m)[0] not in versions]


def apply(db: Database, migrations: list[Migration], now: datetime | None = None) -> list[int]:
    """Run `migrations` and record each. The caller holds the write transaction."""
    if "migrations" not in db.table_names():
        db.create_table(
            "migrations",
            {"version": int, "name": str, "applied_at": str},
            pk="version",
            not_null=("name", "applied_at"),
        )
    at = encode_dt(now or datetime.now(UTC))
    done: list[int] = []
    for migration in migrations:
        version, name = _version(migration)
        migration(db)
        db.execute(
            "INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (version, name, at),
        )
        done.append(version)
    return done
