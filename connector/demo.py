"""`leadscore demo`: the embedded default. Starts the HubSpot sandbox with the demo portal on
127.0.0.1 (or, with `--crm marketo`, the Marketo sandbox with the same personas), creates our
properties, runs a full sync, shows what sales now sees in the CRM, then shows that a second
sync writes nothing."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from connector.crm.hubspot import PROPERTY_NAMES, HubSpotAdapter
from connector.errors import ConfigError, ConnectorError
from connector.model.loader import LoadedModel, load_model
from connector.pipeline import Pipeline, SyncSummary
from connector.sandbox.demo_portal import ANCHOR
from connector.settings import FIXTURES_DIR, load_settings
from connector.state.codec import decode_mapping
from connector.state.store import StateStore
from connector.text import display_text
from connector.views import short_stage

DEMO_FIXTURE = FIXTURES_DIR / "hubspot_demo_portal.json"
# The README's "What the demo shows", in its order: shown first, the rest summarised.
PERSONAS: tuple[str, ...] = (
    "dana.whitfield@acme-analytics.com",
    "riley.chen1987@gmail.com",
    "jordan.pike@outlook.com",
    "morgan@rivalscore.io",
    "taylor.brooks@globex.co.uk",
    "casey@initech.com",
)
MARKETO_FIXTURE = FIXTURES_DIR / "marketo_demo_instance.json"
# The jobs row that marks a state DB the demo made: {"crm", "last_run"}, the newest run the
# demo recorded there. A run recorded after it (a sync against a real portal) makes the file
# a state DB like any other, which the demo never writes into.
DEMO_JOB = "demo"


@dataclass
class DemoResult:
    first: SyncSummary
    second: SyncSummary
    created: list[str]
    rows: list[dict[str, Any]]
    state_path: Path


# the demo data's anchor, both fixtures' (the sandbox shifts their times by `now - anchor`)
DEMO_ANCHOR = datetime.fromisoformat(ANCHOR)


def demo_clock(real: datetime) -> datetime:
    """The demo's clock at the real time `real`: the latest moment up to it at the demo data's
    anchor time of day (12:00 UTC), so a demo run at any hour scores exactly the same. The
    sandbox shifts the fixture's times by `now - anchor`; a shift of whole days keeps each
    event on its UTC day and at its age, where any other shift moves the events near
    midnight to another day, and a rule over calendar days ("visits on 3 days") fires at
    some hours and not at others."""
    return DEMO_ANCHOR + (real - DEMO_ANCHOR) // timedelta(days=1) * timedelta(days=1)


def _real_now() -> datetime:
    return datetime.now(UTC)


def _portal_source() -> Any:
    if DEMO_FIXTURE.exists():
        return DEMO_FIXTURE
    from connector.sandbox.demo_portal import build_demo_portal

    return build_demo_portal()


def demo_state_kind(path: Path) -> str:
    """What is at `path`, read without writing (no lock, no -wal or -shm file made): "new"
    (nothing there, an empty file or an empty SQLite DB; a directory too, which opening
    refuses), "demo" (a state DB an earlier demo made, closed, and not used since) or "other"
    (any other state DB, one open or not closed cleanly (its -wal or -shm file is there), or
    a file that is no SQLite DB)."""
    if not path.exists() or path.is_dir():
        return "new"
    if any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm", "-journal")):
        return "other"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        return "other"
    try:
        tables = {
            str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if not tables:
            return "new"
        if not {"jobs", "runs"} <= tables:
            return "other"
        row = conn.execute("SELECT state FROM jobs WHERE name = ?", (DEMO_JOB,)).fetchone()
        last = conn.execute("SELECT max(id) FROM runs").fetchone()[0]
    except sqlite3.Error:
        return "other"
    finally:
        conn.close()
    try:
        marker = decode_mapping(row[0]) if row is not None else None
    except ValueError:
        return "other"
    return "demo" if marker is not None and marker.get("last_run") == last else "other"


def claim_demo_state(path: Path) -> bool:
    """Make `path` ready for the demo's state DB: True when it held an earlier demo's, removed
    to start afresh (a demo synced into its old state shows another story). Any other state
    DB is refused (`ConfigError`, exit 2) and left as it is: the demo never writes into it."""
    kind = demo_state_kind(path)
    if kind == "new":
        return False
    if kind == "other":
        raise ConfigError(
            f"{path} exists and is not a state DB an earlier demo kept (closed and unused "
            "since); the demo writes into no other file: give a new path, or remove it yourself"
        )
    path.unlink()
    return True


def _mark_demo(store: StateStore, crm: str) -> None:
    last = store.last_runs(crm, 1)
    store.set_job(DEMO_JOB, {"crm": crm, "last_run": last[0].id if last else None})


@contextmanager
def _state_path(path: Path | None) -> Iterator[Path]:
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="leadscore-demo-") as tmp:
        yield Path(tmp) / "leadscore-demo.db"


def run_demo(
    console: Console | None = None,
    *,
    state_path: Path | None = None,
    model: LoadedModel | None = None,
    now: datetime | None = None,
    keep_state: bool = False,
    crm: str = "hubspot",
    show_all: bool = False,
) -> DemoResult:
    from connector.enrich.enricher import build_enricher

    out = console or Console()
    loaded = model or load_model()
    fixed_now = now if now is not None else demo_clock(_real_now())
    afresh = claim_demo_state(state_path) if state_path is not None else False
    with _state_path(state_path) as db_path, _sandbox(crm, fixed_now) as (sb, adapter, reader):
        name = {"hubspot": "HubSpot", "marketo": "Marketo"}.get(crm, crm)
        out.print(
            f"[bold]{name} sandbox[/bold] with the demo data on {sb.url}, its clock at "
            f"{fixed_now:%Y-%m-%d %H:%M} UTC"
        )
        if afresh:
            out.print(f"(state DB {db_path}: an earlier demo's, started afresh)", highlight=False)
        store = StateStore.open(db_path)
        try:
            _mark_demo(store, crm)
            created = adapter.ensure_properties()
            out.print(f"init-properties: {_created_line(created)}")
            settings = load_settings()
            enricher = build_enricher(settings, cache=store.company_cache)
            pipeline = Pipeline(store, adapter, loaded, enricher=enricher, clock=lambda: fixed_now)
            # the demo portal and instance have companies: accounts are scored too
            from connector.account_stage import AccountStage

            pipeline.accounts = AccountStage(pipeline)
            first = pipeline.sync()
            out.print(first.line())
            rows = [reader(c.id) for c in store.iter_contacts(crm)]
            if show_all:
                out.print(_table(rows, loaded, crm))
            else:
                personas = [r for p in PERSONAS for r in rows if r["email"] == p]
                out.print(_table(personas, loaded, crm, sort=False, title=": the personas"))
                for line in _summary(rows, len(personas)):
                    out.print(line, highlight=False)
            if pipeline.accounts is not None:
                out.print(_accounts(store, crm, out.width))
            second = pipeline.sync()
            out.print(second.line())
            write_kind = "contacts.batch_update" if crm == "hubspot" else "leads.write"
            write_calls = sum(
                v
                for k, v in second.api_calls_by_kind.items()
                if "write" in k or k == write_kind or "batch_update" in k
            )
            out.print(
                f"[bold]second sync:[/bold] {second.written + second.companies_written} "
                f"write(s), {second.unchanged} "
                f"contact(s) unchanged, {second.api_calls} API call(s), write calls "
                f"{write_calls}"
            )
            if keep_state or state_path is not None:
                flag = "" if crm == "hubspot" else " --crm marketo"
                # the demo scored accounts: later commands on its DB need the setting too,
                # or they note that account scoring is off
                out.print(
                    f"State DB kept at {db_path}; the demo scored accounts, so give later "
                    f"commands LEADSCORE_ACCOUNTS=true as it did: try `LEADSCORE_ACCOUNTS=true "
                    f"leadscore{flag} --state {db_path} explain casey@initech.com`",
                    highlight=False,
                    soft_wrap=True,
                )
            else:
                out.print(
                    f"Next: `leadscore sandbox {crm}` keeps a sandbox running for "
                    "`leadscore sync` (see README)."
                )
        finally:
            with suppress(ConnectorError):  # the error in flight (if any) is the one to show
                _mark_demo(store, crm)
            adapter.close()
            store.close()
        return DemoResult(first, second, created, rows, db_path)


@contextmanager
def _sandbox(crm: str, now: datetime | None) -> Iterator[tuple[Any, Any, Any]]:
    """(running sandbox, adapter on it, contact id -> what sales sees)."""
    if crm == "hubspot":
        from connector.sandbox.hubspot import HubSpotSandbox

        with HubSpotSandbox.start(_portal_source(), now=now) as sb:
            hubspot = HubSpotAdapter(SecretStr(sb.token), sb.url, accounts=True)
            yield sb, hubspot, lambda cid: _hubspot_row(sb, cid)
        return
    if crm == "marketo":
        from connector.crm.marketo import DEFAULT_FIELD_MAP, MarketoAdapter
        from connector.sandbox.marketo import MarketoSandbox

        source: Any = MARKETO_FIXTURE
        if not MARKETO_FIXTURE.exists():  # pragma: no cover - the fixture ships
            from connector.sandbox.marketo_demo import build_demo_instance

            source = build_demo_instance()
        with MarketoSandbox.start(source, now=now) as msb:
            adapter = MarketoAdapter(
                msb.url, SecretStr(msb.client_id), SecretStr(msb.client_secret), accounts=True
            )
            yield msb, adapter, lambda cid: _marketo_row(msb, cid, DEFAULT_FIELD_MAP)
        return
    raise ValueError(f"unknown CRM {crm!r}")


def _hubspot_row(sb: Any, cid: str) -> dict[str, Any]:
    props = sb.contact(cid).properties
    return {
        "id": cid,
        "email": props.get("email") or "",
        "grade": props.get(PROPERTY_NAMES["grade"]) or "",
        "priority": props.get(PROPERTY_NAMES["priority"]) or "",
        "score": props.get(PROPERTY_NAMES["score"]) or "",
        "stage": props.get("lifecyclestage") or "",
        "mql_reason": props.get(PROPERTY_NAMES["mql_reason"]) or "",
        "mismatch": props.get(PROPERTY_NAMES["profile_mismatch"]) == "true",
        "reasons": props.get(PROPERTY_NAMES["reasons"]) or "",
        "account_score": props.get(PROPERTY_NAMES["account_score"]) or "",
        "account_grade": props.get(PROPERTY_NAMES["account_grade"]) or "",
    }


def _marketo_row(sb: Any, cid: str, fields: dict[str, str]) -> dict[str, Any]:
    rec = sb.lead(cid)
    values = rec.values if rec is not None else {}

    def get(ours: str) -> Any:
        name = fields.get(ours) or ""
        return values.get(name) if name else None

    score = get("score")
    return {
        "id": cid,
        "email": values.get("email") or "",
        "grade": get("grade") or "",
        "priority": get("priority") or "",
        "score": "" if score is None else str(int(float(score))),
        "stage": str(get("lifecycle_stage") or ""),
        "mql_reason": get("mql_reason") or "",
        "mismatch": str(get("profile_mismatch")).lower() == "true",
        "reasons": get("reasons") or "",
        "account_score": "" if get("account_score") is None else str(get("account_score")),
        "account_grade": get("account_grade") or "",
    }


DEMO_ACCOUNTS = 5  # the MQAs first, hottest first


def _accounts(store: StateStore, crm: str, width: int) -> Table:
    """The hottest accounts, one line each: Northwind Data's committee is an MQA although
    none of its four people is an MQL alone."""
    from connector.ops.accounts import demo_account_rows
    from connector.ops.views import accounts_table

    rows = demo_account_rows(store, crm, DEMO_ACCOUNTS)
    scored = store.count_account_scores(crm)
    mqas = store.count_mqas(crm)
    shown = f"; the {len(rows)} hottest here" if len(rows) < scored else ""
    return accounts_table(
        rows,
        f"Accounts: {mqas} MQA of {scored} scored{shown} (`leadscore accounts`, "
        "`explain --account DOMAIN`)",
        compact=True,
        width=width,
    )


def _created_line(created: list[str]) -> str:
    if not created:
        return "nothing to create (all exist)"
    props = [c for c in created if not c.startswith("group ")]
    groups = [c for c in created if c.startswith("group ")]
    return "created " + " and ".join([*groups, f"{len(props)} properties"] if props else groups)


def _summary(rows: list[dict[str, Any]], shown: int) -> list[str]:
    """All contacts in two lines (by grade, by stage) and where to read about the others."""

    def counts(key: str, order: tuple[str, ...]) -> str:
        got: dict[str, int] = {}
        for r in rows:
            label = short_stage(r[key]) if key == "stage" else (r[key] or "—")
            got[label] = got.get(label, 0) + 1
        # in funnel order: a Marketo demo status ranks as the stage it stands for
        rank = [k.lower().replace("open", "lead") for k in got]
        ranked = sorted(
            zip(rank, got, strict=True),
            key=lambda rk: (order.index(rk[0]) if rk[0] in order else len(order), rk[1]),
        )
        return " · ".join(f"{k} {got[k]}" for _, k in ranked)

    stages = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
    return [
        f"All {len(rows)} contacts by grade: {counts('grade', ('a', 'b', 'c', 'd'))}",
        f"              by stage: {counts('stage', stages)}",
        f"…and {len(rows) - shown} more: `leadscore demo --all` lists them; "
        "`demo --keep-state PATH` to explain any.",
    ]


def _table(
    rows: list[dict[str, Any]],
    model: LoadedModel,
    crm: str = "hubspot",
    *,
    sort: bool = True,
    title: str = "",
) -> Table:
    where = "HubSpot" if crm == "hubspot" else "Marketo"
    table = Table(
        title=f"What sales sees in {where} now{title} (model {model.version}, {model.fingerprint})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("contact", overflow="ellipsis", no_wrap=True, max_width=36)
    # the priority label: the grade and the engagement band (A1: grade A, band 1)
    table.add_column("priority", justify="center")
    table.add_column("score", justify="right")
    table.add_column("stage", no_wrap=True)
    table.add_column("why (MQL reason, top reasons)", overflow="fold", ratio=1)

    def key(r: dict[str, Any]) -> tuple[float, str]:
        try:
            return (-float(r["score"] or 0), r["email"])
        except ValueError:
            return (0.0, r["email"])

    for r in sorted(rows, key=key) if sort else rows:
        why = [f"MQL: {r['mql_reason']}"] if r["mql_reason"] else []
        if r["mismatch"]:
            why.append("⚑ behaviour yes, profile no")
        why.append(r["reasons"])
        table.add_row(  # CRM text: plain text, never markup
            Text(display_text(r["email"])),
            r["priority"] or r["grade"],
            r["score"],
            short_stage(r["stage"]),
            Text(display_text("; ".join(why))),
        )
    return table
