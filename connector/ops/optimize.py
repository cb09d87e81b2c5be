"""`leadscore optimize`: rewrite the state DB's events in contact order, so that full rescores
read them in order (`connector.state.layout`). `--check` only estimates how spread they are.

Exit codes: 0 done; 1 no state DB, or not enough free disk; 6 a `leadscore run` worker uses
the state DB (stop it first); nothing changes on any error. 2 bad usage.
"""

from __future__ import annotations

import time

import click

from connector.errors import ConnectorError
from connector.ops.common import (
    console,
    fail,
    open_existing_store,
    refuse_beside_a_run_worker,
    settings_from,
)
from connector.state.layout import EventsLayout


def layout_line(layout: EventsLayout) -> str:
    return (
        f"{layout.events:,} events, {layout.spread:.0%} stored apart from their contact's "
        f"previous one ({layout.contacts_sampled:,} contacts sampled)"
    )


@click.command("optimize")
@click.option(
    "--check",
    is_flag=True,
    help="Only estimate how spread the events are and say whether optimizing is worth it, and "
    "why; change nothing.",
)
@click.option("--json", "as_json", is_flag=True, help="The result as one JSON document.")
@click.pass_context
def optimize_cmd(ctx: click.Context, check: bool, as_json: bool) -> None:
    """Rewrite the stored events in contact order: faster full rescores after months of syncs.

    Syncs append each day's events of many contacts, so one contact's events end up spread
    over the file and a full rescore reads a page per event. This rewrites the events table
    in contact order, in one transaction, and reports the spread before and after. Not beside
    a running `leadscore run` worker (stop it first); a sync started meanwhile gives up after
    its busy timeout. Ctrl-C stops it, nothing changed. It needs free disk of twice the DB
    file; the old pages stay in the file as free space the DB reuses. `leadscore status`
    says when it is worth it.
    """
    settings = settings_from(ctx)
    store = open_existing_store(settings)
    out = console()
    try:
        if check:
            layout = store.events_layout()
            if as_json:
                from connector.jsonout import emit, jsonable

                emit(jsonable(layout))
                return
            out.print(layout_line(layout))
            out.print(
                f"worth optimizing: {layout.reason}; run `leadscore optimize`"
                if layout.worth_optimizing
                else f"no need to optimize: {layout.reason}"
            )
            return
        # its passes would wait on the rewrite, and give up
        refuse_beside_a_run_worker(store, "run `leadscore optimize`, then start it again")
        t0 = time.perf_counter()
        with out.status("rewriting the events in contact order …"):
            done = store.recluster_events()
        took = time.perf_counter() - t0
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)
    finally:
        store.close()
    if as_json:
        from connector.jsonout import emit, jsonable

        emit({"events": done.events, "seconds": round(took, 2),
              "before": jsonable(done.before), "after": jsonable(done.after)})  # fmt: skip
        return
    out.print(f"before: {layout_line(done.before)}")
    out.print(f"after:  {layout_line(done.after)}")
    out.print(f"rewrote {done.events:,} events in contact order in {took:.1f}s")
