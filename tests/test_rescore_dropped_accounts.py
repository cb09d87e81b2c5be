"""`rescore --dry-run` and the applied rescore on an account left with no live member (issue
21): the applied rescore drops its score and clears its company record's values (blank,
diff-only, once); the dry run shows the same, in the account preview (a `no score` column of
the grade matrix, the MQA it stops being, the company records to clear), and its counts are
what the applied rescore then writes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console

from connector.ops.rescore import NO_SCORE, apply_rescore, preview_rescore
from connector.ops.views import print_preview

from .conftest import NOW, Harness
from .test_sync_accounts import ACME, NORTHWIND, accounts_harness, company_writes

MEMBERS = ("201", "202", "203", "204")
BLANK = dict.fromkeys(
    (
        "leadscore_account_score",
        "leadscore_account_grade",
        "leadscore_account_reasons",
        "leadscore_engaged_contacts",
        "leadscore_mqa_reason",
        "leadscore_model_version",
    ),
    "",
)


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Harness]:
    # the companies' own firmographics only: a preview (its own account builder) and the
    # applied rescore read the same facts
    yield from accounts_harness(tmp_path, firmographics=False)


def test_dry_run_counts_the_cleared_account_values_the_applied_rescore_writes(
    plain: Harness,
) -> None:
    h = plain
    assert h.pipeline.sync().status == "ok"
    before = h.store.account_score("hubspot", f"company:{NORTHWIND}")
    assert before is not None and (before.score, before.grade, before.mqa) == (210, "A", True)
    assert h.sb.company(NORTHWIND).properties["leadscore_account_score"] == "210"
    # every Northwind person deleted in HubSpot; the state DB knows it (as a write's 404
    # records it): the account has no live member left
    h.clock[0] = NOW + timedelta(minutes=15)
    for cid in MEMBERS:
        h.sb.archive(cid)
        h.store.mark_archived("hubspot", cid, h.clock[0])
    model = h.pipeline.model

    preview = preview_rescore(h.store, "hubspot", model, h.pipeline.enricher, h.clock[0])
    acc = preview.accounts
    assert acc is not None
    assert (acc.accounts, acc.dropped, acc.score_changes, acc.grade_changes) == (5, 1, 1, 0)
    assert (acc.mqa_before, acc.mqa_after, acc.stopped_mqa, acc.became_mqa) == (1, 0, 1, 0)
    assert acc.transitions == Counter(
        {("A", NO_SCORE): 1, ("A", "A"): 1, ("C", "C"): 1, ("D", "D"): 2}
    )
    assert (acc.companies_to_write, acc.companies_to_clear) == (1, 1)
    assert [(c.account_id, c.before_score, c.after_grade, c.dropped) for c in acc.sample] == [
        (f"company:{NORTHWIND}", 210, NO_SCORE, True)
    ]
    assert preview.to_write == 0  # the people left are unchanged
    # what an admin reads: the headline, the matrix's column, the company records line
    console = Console(width=160, record=True, color_system=None)
    print_preview(console, preview, dry_run=True)
    shown = console.export_text()
    assert (
        "5 account(s): 1 score change(s), 0 grade change(s), 1 left with no live member "
        "(score dropped), MQA 1 → 0 (+0 became / −1 stopped being MQA)"
    ) in shown
    assert "┃ before \\ after ┃ A ┃ B ┃ C ┃ D ┃ no score ┃ total ┃" in shown
    assert "│ A              │ 1 │ · │ · │ · │        1 │     2 │" in shown
    assert (
        "company record(s) to write: 1 (1 cleared: their account has no live member left)"
    ) in shown
    assert "Northwind Data" in shown and "210 → —" in shown
    assert "stopped being MQA (no live member left: values cleared)" in shown

    h.sb.clear_log()
    applied = apply_rescore(h.pipeline, model)
    assert applied.rescore is not None and applied.rescore.status == "ok"
    # exactly what the dry run counted: one company record, its values cleared; no contact
    assert applied.companies_written == acc.companies_to_write == 1
    assert applied.written == preview.to_write == 0
    assert company_writes(h) == {NORTHWIND: BLANK}
    assert [r.path for r in h.sb.requests if r.path.endswith("/batch/update")] == [
        "/crm/v3/objects/companies/batch/update"
    ]
    assert h.sb.company(NORTHWIND).properties["leadscore_account_score"] in ("", None)
    assert h.store.account_score("hubspot", f"company:{NORTHWIND}") is None
    assert h.store.get_account_written_many("hubspot", [NORTHWIND])[NORTHWIND] == {
        k.removeprefix("leadscore_"): v for k, v in BLANK.items()
    }
    assert h.store.accounts_due("hubspot") == []

    # nothing left to clear: the next dry run shows no drop, and a rescore writes nothing
    again = preview_rescore(h.store, "hubspot", model, h.pipeline.enricher, h.clock[0])
    assert again.accounts is not None
    assert (again.accounts.dropped, again.accounts.companies_to_write) == (0, 0)
    h.sb.clear_log()
    second = apply_rescore(h.pipeline, model)
    assert second.written == 0 and company_writes(h) == {}


def test_a_sync_clears_the_company_values_of_an_account_everyone_left(plain: Harness) -> None:
    h = plain
    assert h.pipeline.sync().status == "ok"
    h.sb.clear_log()
    h.clock[0] = NOW + timedelta(minutes=15)
    url = "https://www.leadscore-demo.com/product/explain"
    for cid in MEMBERS:  # the whole committee moves to Acme (a new event: pulled and scored)
        h.sb.associate(cid, ACME, primary=True)
        h.sb.add_event(cid, "e_visited_page", {"hs_url": url}, NOW + timedelta(minutes=5))
    summary = h.pipeline.sync()
    assert summary.status == "ok", summary.message
    assert h.store.account_score("hubspot", f"company:{NORTHWIND}") is None
    acme = h.store.account_score("hubspot", f"company:{ACME}")
    assert acme is not None and acme.members == 5
    writes = company_writes(h)
    assert writes[NORTHWIND] == BLANK  # cleared, once
    assert set(writes) == {NORTHWIND, ACME}
    assert h.store.accounts_due("hubspot") == []
    # the next sync clears nothing again
    h.sb.clear_log()
    h.clock[0] = NOW + timedelta(minutes=30)
    again = h.pipeline.sync()
    assert again.status == "ok" and again.written == 0 and company_writes(h) == {}
