"""`leadscore status`: what the worker did lately and what is waiting, from the state DB alone
(no CRM call, no token needed)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector.active_model import describe, describe_active, rebuild, version_not_bumped
from connector.errors import ConfigError
from connector.model.loader import LoadedModel
from connector.pipeline.summary import companies_part
from connector.scoring.accounts import shown_text
from connector.state.runs import RUN_RUNNING, seen_run
from connector.state.store import RunRecord, StateStore

# run counts worth a column, in order (the rest stay in the DB), named as a sync's summary
# line names them
RUN_COUNTS: tuple[tuple[str, str], ...] = (
    ("pulled", "pulled"),
    ("new_events", "new events"),
    ("scored", "scored"),
    ("accounts_scored", "accounts scored"),
    ("written", "written"),
    ("repaired", "repaired"),
    ("unchanged", "unchanged"),
    ("dead_lettered", "dead-lettered"),
)
TOKEN_SHOWN = 16  # characters of a CRM's paging token a cursor shows (the rest: "…")


@dataclass(frozen=True, slots=True)
class CursorInfo:
    stream: str
    since: datetime | None  # contacts changed since / events newer than (high water)
    position: str | None  # a pass in progress resumes here
    updated_at: datetime | None
    raw: str

    def describe(self) -> str:
        """`up to 2026-12-06 20:16` (UTC), and a pass in progress with the page it resumes
        after (an opaque token: its start); a value of another shape as it is, cut at a space
        with "…"."""
        parts = []
        if self.since is not None:
            parts.append(f"up to {self.since:%Y-%m-%d %H:%M}")
        if self.position is not None:
            token = self.position
            if len(token) > TOKEN_SHOWN:
                token = token[:TOKEN_SHOWN] + "…"
            parts.append(f"pass in progress, resumes after {token}")
        if parts:
            return "; ".join(parts)
        return "not started" if self.raw in ("", "{}") else shown_text(self.raw, 60)


@dataclass
class Status:
    crm: str
    now: datetime
    # as shown (`seen_run`): a `running` run whose process is gone is `interrupted`, with a
    # message naming the process
    runs: list[RunRecord] = field(default_factory=list)
    cursors: list[CursorInfo] = field(default_factory=list)
    contacts: int = 0
    events: int = 0
    scored: int = 0
    pending_writes: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)  # kind -> open count
    due: int = 0
    model_in_use: str | None = None  # "version (fingerprint)": the model in force
    model_problem: str | None = None  # the configured model file is invalid
    active_model: str | None = None  # the state DB's model in force: version, when, from where
    configured_model: str | None = None  # "path: version (fingerprint)" of the configured file
    configured_notes: list[str] = field(default_factory=list)  # why it is not in force, ...
    stored_models: list[tuple[str, str, int]] = field(default_factory=list)  # version, fp, n
    events_spread: float = 0.0  # `StateStore.events_layout`: the sampled share stored apart
    optimize_hint: bool = False  # spread enough, on enough events, for `leadscore optimize`
    # account-based scoring (issue 21): scored accounts, MQAs among them, and those the next
    # sync scores again (its backlog: firmographics changed, members moved; or a score
    # changing by now)
    accounts: int = 0
    mqas: int = 0
    accounts_due: int = 0

    @property
    def open_dead_letters(self) -> int:
        return sum(self.dead_letters.values())

    @property
    def scored_with_other_models(self) -> int:
        if self.model_in_use is None:
            return 0
        return sum(n for v, fp, n in self.stored_models if f"{v} ({fp})" != self.model_in_use)


def _cursor(stream: str, value: str, updated: str | None) -> CursorInfo:
    data: Any
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    since = position = None
    if isinstance(data, dict):
        since = _dt(data.get("since") or data.get("high_water"))
        pos = data.get("position")
        position = None if pos is None else str(pos)
    return CursorInfo(stream, since, position, _dt(updated), value)


def _dt(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def build_status(
    store: StateStore,
    crm: str,
    now: datetime,
    model: LoadedModel | None = None,
    *,
    model_problem: str | None = None,
    explicit: bool = False,
    runs: int = 10,
) -> Status:
    """Everything `leadscore status` shows. Reads only. `model`: the configured model file
    (`explicit`: named by LEADSCORE_MODEL_PATH); the model in use is the state DB's model in
    force when there is one (connector.active_model), else the configured one."""
    st = Status(crm, now)
    st.runs = [seen_run(r, now) for r in store.last_runs(crm, runs)]
    db = store.db
    st.cursors = [
        _cursor(stream, value, updated)
        for stream, value, updated in db.execute(
            # "properties": the CRM properties' creation stamps, not a position
            "SELECT stream, value, updated_at FROM cursors WHERE crm = ? AND stream != "
            "'properties' ORDER BY stream",
            [crm],
        ).fetchall()
    ]
    st.contacts = store.count_contacts(crm)
    st.events = store.count_events(crm)
    layout = store.events_layout(events=st.events)
    st.events_spread, st.optimize_hint = layout.spread, layout.worth_optimizing
    st.pending_writes = store.count_pending_writes(crm)
    st.dead_letters = Counter(d.kind for d in store.open_dead_letters(crm))
    st.due = store.count_due_contacts(crm, now)
    st.stored_models = store.stored_models(crm)
    st.scored = sum(n for _, _, n in st.stored_models)
    st.accounts = store.count_account_scores(crm)
    if st.accounts:
        st.mqas = store.count_mqas(crm)
        st.accounts_due = len(set(store.accounts_due(crm)) | set(store.due_account_ids(crm, now)))
    if model is not None:
        st.model_in_use = describe(model.version, model.fingerprint)
        st.configured_model = f"{model.path}: {st.model_in_use}"
    st.model_problem = model_problem
    active = store.get_active_model(crm)
    if active is None:
        return st
    st.active_model = describe_active(active)
    fp = active.fingerprint
    try:
        fp = rebuild(active).fingerprint
    except ConfigError as exc:
        st.configured_notes.append(str(exc))
    st.model_in_use = describe(active.version, fp)
    if model is not None and model.fingerprint != fp:
        st.configured_notes.append(
            "not in force: sync, run and backfill refuse to start while LEADSCORE_MODEL_PATH "
            f"names it; roll it out with `leadscore rescore --model {model.path}`"
            if explicit
            else "not in force (the default file; the model in force is used)"
        )
        if version_not_bumped(model, active.version, fp) is not None:
            st.configured_notes.append(f"version not bumped: {model.version} with other content")
    return st


def run_duration(run: RunRecord) -> str:
    """`<0.1s`, `3.3s`, `1m15s`, `2h15m07s`."""
    d = run.duration
    if d is None:
        return "running" if run.status == RUN_RUNNING else "—"
    s = d.total_seconds()
    if s < 0.05:
        return "<0.1s"
    if s < 60:
        return f"{s:.1f}s"
    whole = int(s)
    hours, minutes, seconds = whole // 3600, whole // 60 % 60, whole % 60
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


def run_counts(run: RunRecord) -> str:
    """A run's counts as the summary line words them (those that are not 0; thousands
    separated): `pulled 54, new events 2,342, scored 54, written 54 (+12 companies)`, company
    records written beside the contacts in brackets; dead letters of both kinds, the bad input
    records among them named (`dead-lettered 3 (2 bad input)`); `—` when all are 0."""
    c = run.counts
    companies = int(c.get("companies_written") or 0)
    bad = int(c.get("bad_records") or 0)
    parts = []
    for k, label in RUN_COUNTS:
        if k == "written" and (c.get(k) or companies):
            parts.append(f"{label} {c.get(k) or 0:,}{companies_part(companies)}")
        elif k == "dead_lettered" and bad:
            dead = int(c.get(k) or 0) + bad
            parts.append(f"{label} {dead:,} ({bad:,} bad input)")
        elif c.get(k):
            parts.append(f"{label} {c[k]:,}")
    return ", ".join(parts) or "—"
