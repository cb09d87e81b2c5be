"""`rescore --dry-run` with accounts on predicts exactly what the applied `rescore` then does
(issue 21): the MQL verdicts of contacts at an MQA (the account lowers their MQL bar), the
account grade transitions and the MQA flips, contact by contact and account by account.
Against the HubSpot sandbox's demo portal (the Northwind Data committee and 11 more companies).
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from connector.model.loader import load_model
from connector.ops.rescore import apply_rescore
from connector.state.store import StateStore

from .conftest import Harness
from .test_ops_rescore_accounts import _preview
from .test_ops_rescore_accounts import acc as acc  # the fixture

CRM = "hubspot"


def _model(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    src = Path(load_model().path)
    folder = tmp_path / "models"
    folder.mkdir(parents=True)
    for name in ("titles.yaml", "target_accounts.txt"):
        shutil.copy(src.parent / name, folder / name)
    text = src.read_text()
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = folder / "model.yaml"
    path.write_text(text)
    return path


# an MQA from 150 points (was 100): Globex and Wayne Enterprises stop being MQAs; at an MQA a
# grade-A/B contact is MQL from 40 points (was 60)
NEW_BARS = (
    ('version: "2026.12-default"', 'version: "2026.12-mqa"'),
    ("  mqa: {threshold: 100, grades", "  mqa: {threshold: 150, grades"),
    ("contact_mql_threshold: 60,", "contact_mql_threshold: 40,"),
)


def _verdicts(store: StateStore) -> dict[str, str | None]:
    rows = store.db.conn.execute(
        "SELECT contact_id, mql_reason FROM scores WHERE crm = ?", (CRM,)
    ).fetchall()
    return {cid: reason for cid, reason in rows}


def _accounts(store: StateStore) -> dict[str, tuple[str, bool]]:
    found = store.account_scores_many(CRM, store.account_ids(CRM))
    return {a: (s.grade, s.mqa) for a, s in found.items()}


def _check_preview_equals_run(acc: Harness, path: Path) -> tuple[set[str], set[str]]:
    """Preview, apply, compare; returns the (gained, lost) MQL-qualified contacts."""
    model = load_model(path)
    verdicts, accounts = _verdicts(acc.store), _accounts(acc.store)
    preview = _preview_all(acc, path)
    applied = apply_rescore(acc.pipeline, model)
    assert applied.rescore is not None
    assert (applied.sync.status, applied.rescore.status) == ("ok", "ok")
    now, accounts_now = _verdicts(acc.store), _accounts(acc.store)
    gained = {c for c, r in now.items() if r is not None and verdicts.get(c) is None}
    lost = {c for c, r in verdicts.items() if r is not None and now.get(c) is None}
    # contacts: the counts, and who (every change is in the sample: it is larger than them)
    assert (preview.mql_before, preview.mql_after) == (
        sum(r is not None for r in verdicts.values()),
        sum(r is not None for r in now.values()),
    )
    assert (preview.new_mqls, preview.lost_mqls) == (len(gained), len(lost))
    flips = {c.contact_id: c.after_mql for c in preview.sample if c.mql_flip}
    assert set(flips) == gained | lost
    assert {c: now[c] for c in flips} == flips  # the same verdict, reason and all
    assert {c: v[2] for c, v in preview.after.items()} == now
    # accounts: the grade matrix and the MQA flips
    a = preview.accounts
    assert a is not None
    assert a.transitions == Counter((accounts[k][0], v[0]) for k, v in accounts_now.items())
    became = {k for k, v in accounts_now.items() if v[1] and not accounts[k][1]}
    stopped = {k for k, v in accounts_now.items() if accounts[k][1] and not v[1]}
    assert (a.became_mqa, a.stopped_mqa) == (len(became), len(stopped))
    assert {c.account_id for c in a.sample if c.mqa_flip} == became | stopped
    # the contacts written: the ones the preview named
    contact_writes = {
        str(i["id"])
        for r in acc.sb.requests
        if r.path.rstrip("/") == "/crm/v3/objects/contacts/batch/update" and r.status == 200
        for i in r.body["inputs"]
    }
    assert contact_writes == set(preview.write_ids)
    company_writes = [
        str(i["id"])
        for r in acc.sb.requests
        if r.path.rstrip("/") == "/crm/v3/objects/companies/batch/update" and r.status == 200
        for i in r.body["inputs"]
    ]
    assert len(company_writes) == len(set(company_writes))  # each once
    assert applied.companies_written == len(company_writes) == a.companies_to_write
    assert applied.written == len(contact_writes)
    return gained, lost


def _preview_all(acc: Harness, path: Path, accounts: bool = True):  # type: ignore[no-untyped-def]
    from connector.enrich.enricher import build_enricher
    from connector.ops.common import ReadOnlyCompanyCache
    from connector.ops.rescore import preview_rescore
    from connector.settings import load_settings

    from .conftest import NOW

    def enricher_for(st: StateStore):  # type: ignore[no-untyped-def]
        return build_enricher(load_settings(), cache=ReadOnlyCompanyCache(st.company_cache))

    return preview_rescore(
        acc.store,
        CRM,
        load_model(path),
        enricher_for(acc.store),
        NOW,
        sample=100,
        keep_after=True,
        enricher_for=enricher_for,
        accounts=accounts,
    )


def test_dry_run_predicts_the_mqls_an_mqa_keeps_and_makes(acc: Harness, tmp_path: Path) -> None:
    """Settled portal (a second sync read our stages back), then a model with a higher MQA bar
    (Globex and Wayne Enterprises stop being MQAs) and a lower MQL bar at an MQA: the
    people MQL at an MQA keep the verdict (the dry run counted them as lost MQLs), Marcus
    Lee at Northwind Data (40 points, grade B) becomes MQL, nobody loses the verdict."""
    assert acc.pipeline.sync().status == "ok"
    acc.sb.clear_log()
    mqa_made = sorted(c for c, r in _verdicts(acc.store).items() if _by_account(r))
    # at the MQL stage since the first sync (124 was MQL before, under 100 points now): MQL by
    # the account's bar at every pass
    assert mqa_made == ["112", "124", "148"]
    gained, lost = _check_preview_equals_run(acc, _model(tmp_path, *NEW_BARS))
    assert (sorted(gained), sorted(lost)) == (["154"], [])
    now = _verdicts(acc.store)
    assert sorted(c for c, r in now.items() if _by_account(r)) == ["112", "124", "148", "154"]
    assert now["154"] == "account MQA: company:9012 (score 40 ≥ 40 at an MQA)"


def test_dry_run_predicts_the_mqls_an_mqa_keeps_at_the_same_model(acc: Harness) -> None:
    """The model in force again (nothing changes): the preview says so, MQA-made MQLs too."""
    acc.pipeline.sync()
    acc.sb.clear_log()
    gained, lost = _check_preview_equals_run(acc, Path(load_model().path))
    assert (gained, lost) == (set(), set())


def _by_account(reason: str | None) -> bool:
    return (reason or "").startswith("account MQA")


def test_two_processes_preview_the_same(
    acc: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes sharing the contacts by id range: each keeps its waiting members and
    members' written account values; the parent settles them as one process does."""
    from connector.ops import parallel

    path = _model(tmp_path, *NEW_BARS)
    one = _preview(acc, load_model(path))
    monkeypatch.setattr(parallel, "MIN_CONTACTS_PER_WORKER", 1)
    assert parallel.plan_workers(acc.store, CRM, 2) == 2
    two = _preview(acc, load_model(path), workers=2)
    assert (two.new_mqls, two.lost_mqls, two.mql_after) == (
        one.new_mqls,
        one.lost_mqls,
        one.mql_after,
    )
    assert two.new_mqls == 1  # Marcus Lee at Northwind Data
    assert two.sample == one.sample
    assert (two.write_ids, two.write_properties) == (one.write_ids, one.write_properties)
    assert two.accounts is not None and one.accounts is not None
    assert two.accounts.companies_to_write == one.accounts.companies_to_write == 12


def test_dry_run_predicts_the_account_values_written_on_contacts(
    acc: Harness, tmp_path: Path
) -> None:
    """Only the account section changes (same version: the contacts' own values stay): the
    contacts written are the members whose account now shows another score or grade."""
    acc.pipeline.sync()
    acc.sb.clear_log()
    edits = (
        ("    grades: {A: 60, B: 40, C: 20}", "    grades: {A: 85, B: 40, C: 20}"),
        ("per_contact_cap: 50 ", "per_contact_cap: 40 "),
    )
    _check_preview_equals_run(acc, _model(tmp_path, *edits))


def test_dry_run_with_accounts_off_predicts_the_rescore_without_them(acc: Harness) -> None:
    """LEADSCORE_ACCOUNTS off (the pipeline has no account stage) on a state DB that scored
    accounts before: the applied rescore lowers no MQL bar and scores no account; the preview,
    told so, neither (the MQLs an MQA made lose the verdict in both)."""
    acc.pipeline.sync()
    acc.pipeline.accounts = None
    acc.sb.clear_log()
    path = Path(load_model().path)
    verdicts, accounts = _verdicts(acc.store), _accounts(acc.store)
    preview = _preview_all(acc, path, accounts=False)
    assert preview.accounts is None
    applied = apply_rescore(acc.pipeline, load_model(path))
    assert applied.rescore is not None and applied.rescore.status == "ok"
    now = _verdicts(acc.store)
    assert {c: v[2] for c, v in preview.after.items()} == now
    lost = sorted(c for c, r in verdicts.items() if r is not None and now[c] is None)
    assert lost == ["112", "124", "148"]  # MQL by their account's bar only
    assert preview.lost_mqls == 3 and preview.new_mqls == 0
    assert _accounts(acc.store) == accounts  # no account scored
