"""`leadscore demo`: the embedded default. Starts the HubSpot sandbox with the demo portal on
127.0.0.1, creates our properties, runs a full sync, shows what sales now sees in the CRM,
then shows that a second sync writes nothing."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from connector.crm.hubspot import PROPERTY_NAMES, HubSpotAdapter
from connector.model.loader import LoadedModel, load_model
from connector.pipeline import Pipeline, SyncSummary
from connector.settings import FIXTURES_DIR, load_settings
from connector.state.store import StateStore
from connector.views import short_stage

DEMO_FIXTURE = FIXTURES_DIR / "hubspot_demo_portal.json"


@dataclass
class DemoResult:
    first: SyncSummary
    second: SyncSummary
    created: list[str]
    rows: list[dict[str, Any]]
    state_path: Path


def _portal_source() -> Any:
    if DEMO_FIXTURE.exists():
        return DEMO_FIXTURE
    from connector.sandbox.demo_portal import build_demo_portal

    return build_demo_portal()


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
) -> DemoResult:
    from connector.enrich.enricher import build_enricher
    from connector.sandbox.hubspot import HubSpotSandbox

    out = console or Console()
    loaded = model or load_model()
    fixed_now = now
    with (
        _state_path(state_path) as db_path,
        HubSpotSandbox.start(_portal_source(), now=fixed_now) as sb,
    ):
        out.print(f"[bold]HubSpot sandbox[/bold] with the demo portal on {sb.url}")
        adapter = HubSpotAdapter(SecretStr(sb.token), sb.url)
        store = StateStore.open(db_path)
        try:
            created = adapter.ensure_properties()
            out.print(
                "init-properties: created "
                + (", ".join(created) if created else "nothing (all exist)")
            )
            settings = load_settings()
            enricher = build_enricher(settings, cache=store.company_cache)
            clock = (lambda: fixed_now) if fixed_now is not None else (lambda: datetime.now(UTC))
            pipeline = Pipeline(store, adapter, loaded, enricher=enricher, clock=clock)
            first = pipeline.sync()
            out.print(first.line())
            rows = _crm_rows(sb, store)
            out.print(_table(rows, loaded))
            second = pipeline.sync()
            out.print(second.line())
            out.print(
                f"[bold]second sync:[/bold] {second.written} write(s), {second.unchanged} "
                f"contact(s) unchanged, {second.api_calls} API call(s), write calls "
                f"{second.api_calls_by_kind.get('contacts.batch_update', 0)}"
            )
            if keep_state or state_path is not None:
                out.print(
                    f"State DB kept at {db_path}: try `leadscore --state {db_path} explain "
                    "dana.whitfield@acme-analytics.com`"
                )
            else:
                out.print(
                    "Next: `leadscore sandbox hubspot` to keep a sandbox running, then "
                    "`leadscore sync` against it (see README)."
                )
        finally:
            adapter.close()
            store.close()
        return DemoResult(first, second, created, rows, db_path)


def _crm_rows(sb: Any, store: StateStore) -> list[dict[str, Any]]:
    """What sales sees in the CRM now, read back from the sandbox's stored contacts."""
    rows: list[dict[str, Any]] = []
    for contact in store.iter_contacts("hubspot"):
        rec = sb.contact(contact.id)
        props = rec.properties
        rows.append(
            {
                "id": contact.id,
                "email": props.get("email") or "",
                "grade": props.get(PROPERTY_NAMES["grade"]) or "",
                "score": props.get(PROPERTY_NAMES["score"]) or "",
                "stage": props.get("lifecyclestage") or "",
                "mql_reason": props.get(PROPERTY_NAMES["mql_reason"]) or "",
                "mismatch": props.get(PROPERTY_NAMES["profile_mismatch"]) == "true",
                "reasons": props.get(PROPERTY_NAMES["reasons"]) or "",
            }
        )
    return rows


def _table(rows: list[dict[str, Any]], model: LoadedModel) -> Table:
    table = Table(
        title=f"What sales sees in HubSpot now (model {model.version}, {model.fingerprint})",
        title_justify="left",
    )
    table.add_column("contact", overflow="fold", max_width=34)
    table.add_column("grade", justify="center")
    table.add_column("score", justify="right")
    table.add_column("stage")
    table.add_column("MQL reason", max_width=28, overflow="fold")
    table.add_column("top reasons", overflow="fold", max_width=80)

    def key(r: dict[str, Any]) -> tuple[float, str]:
        try:
            return (-float(r["score"] or 0), r["email"])
        except ValueError:
            return (0.0, r["email"])

    for r in sorted(rows, key=key):
        flag = " ⚑ behaviour yes, profile no" if r["mismatch"] else ""
        table.add_row(
            r["email"],
            r["grade"],
            r["score"],
            short_stage(r["stage"]),
            r["mql_reason"] + flag,
            r["reasons"],
        )
    return table
