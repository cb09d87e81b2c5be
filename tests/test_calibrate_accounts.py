"""`leadscore calibrate` with accounts on (issue 21): account outcomes from the members'
outcomes, conversion by account grade and MQA, the lift of an MQA for its contacts and a
suggested MQA threshold, replayed with the sync's account scorer. Against the HubSpot sandbox's
demo portal: sales takes four contacts to SQL (two at Acme Analytics, one at Stark Industries,
the VP Marketing of the Northwind Data committee), outcomes 91 days after the portal's clock."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from click.testing import CliRunner

from connector.calibrate import CalibrationOptions, CalibrationResult, calibrate
from connector.calibrate.accounts import (
    AccountObservation,
    GroupRate,
    MqaRule,
    account_coverage,
)
from connector.calibrate.cli import state_enrich_fn
from connector.calibrate.render_accounts import render_accounts_html, threshold_lines
from connector.cli import cli
from connector.model.loader import load_model
from connector.settings import load_settings
from connector.state.accounts import ContactAccount
from connector.state.store import StateStore
from connector.types import AccountMember, Contact, Event

from .conftest import NOW, Harness
from .test_ops_rescore_accounts import acc

__all__ = ["acc"]
CRM = "hubspot"
AS_OF = NOW + timedelta(days=91)
SQLS = ("101", "139", "145", "153")


@pytest.fixture
def sqls(acc: Harness) -> Iterator[Harness]:
    for cid in SQLS:
        acc.sb.portal.set_property(cid, "lifecyclestage", "salesqualifiedlead")
    assert acc.pipeline.sync().status == "ok"
    yield acc


def _calibrate(h: Harness, **options: object) -> CalibrationResult:
    return calibrate(
        h.store,
        CRM,
        load_model(),
        now=AS_OF,
        options=CalibrationOptions(accounts=True, **options),  # type: ignore[arg-type]
        enrich=state_enrich_fn(load_settings(), h.store),
    )


PEAKS = {
    "Acme Analytics (acme-analytics.com)": ("A", "converted", 375.0),
    "Initech (initech.com)": ("B", "not_converted", 275.0),
    "Globex (globex.co.uk)": ("B", "converted_before", 131.0),
    "Northwind Logistics (northwind-logistics.com)": ("C", "not_converted", 315.0),
    "Umbrella Health (umbrella-health.com)": ("C", "not_converted", None),
    "Hooli (hooli.io)": ("B", "not_converted", 173.0),
    "Stark Industries (stark-industries.com)": ("C", "converted", 308.0),
    "Wayne Enterprises (wayne-enterprises.com)": ("B", "not_converted", 124.0),
    "TinyShop (tinyshop.io)": ("D", "not_converted", 149.0),
    "RivalScore (rivalscore.io)": ("D", "not_converted", None),  # a competitor: forced D
    "Stanford University (stanford.edu)": ("C", "not_converted", None),
    "Northwind Data (northwind-data.com)": ("A", "converted", 174.0),
}


def _rates(groups: Sequence[GroupRate]) -> dict[str, tuple[int, int]]:
    return {g.key: (g.total, g.converted) for g in groups}


def test_accounts_convert_when_a_member_does_by_grade_and_mqa(sqls: Harness) -> None:
    r = _calibrate(sqls)
    a = r.accounts
    assert a is not None
    assert (a.accounts, a.converted, a.not_converted, a.left_out) == (
        12,
        3,
        8,
        {"converted_before": 1},  # Globex: Taylor was a SQL before engaging
    )
    seen = {o.label: (o.grade, o.status, o.peak(2)) for o in a.observations}
    assert seen == PEAKS
    assert _rates(a.by_grade) == {"A": (2, 2), "B": (3, 0), "C": (4, 1), "D": (2, 0)}
    assert _rates(a.by_mqa) == {"MQA": (5, 2), "not MQA": (6, 1)}
    assert [g.rate.value if g.rate else None for g in a.by_mqa] == [0.4, 1 / 6]
    # contacts: at an MQA during their own observation, at another account, none
    assert _rates(a.contacts) == {
        "at an MQA": (20, 3),
        "at another account": (18, 1),
        "no scored account": (15, 0),
    }
    lift = a.contact_lift
    assert lift is not None and round(lift.value, 6) == 2.7  # (3/20) / (1/18)
    assert (round(lift.low, 2), round(lift.high, 2)) == (0.31, 23.69)
    # too few accounts to suggest an MQA threshold: said, nothing suggested
    assert a.suggested is None
    assert a.insufficient == (
        "not enough data: 2 converted and 3 not converted account(s) of grade A, B with a "
        "known outcome; at least 10 of each are needed to suggest an MQA threshold "
        "(--min-accounts)"
    )
    assert a.current is not None
    assert (a.current.mqas, a.current.mqas_converted, a.current.others) == (5, 2, 0)


def test_the_replay_rolls_accounts_up_as_the_sync_does(sqls: Harness) -> None:
    """An account whose last engaged day is its best one peaks at the score the sync stored
    for it at the portal's clock (the same scorer, from the same members' points)."""
    a = _calibrate(sqls).accounts
    assert a is not None
    stored = {s.account_id: s.score for s in sqls.store.top_accounts(CRM, 20)}
    peaks = {o.account_id: o.peak(1) for o in a.observations}
    for account_id in ("company:9001", "company:9002", "company:9012"):  # Acme, Initech, NWD
        assert peaks[account_id] == stored[account_id], account_id


def test_a_suggested_mqa_threshold_separates_the_converting_accounts(sqls: Harness) -> None:
    """With a lower minimum: 174 (Northwind Data's committee) makes both converting A/B
    accounts MQAs and one of the three others (Initech), the best separation (RivalScore, a
    competitor forced to grade D, is none of them)."""
    a = _calibrate(sqls, min_account_conversions=2).accounts
    assert a is not None and a.insufficient is None
    rows = {
        r.threshold: (r.mqas, r.mqas_converted, r.recall, r.false_rate, r.separation)
        for r in a.thresholds
    }
    assert rows == {
        100: (5, 2, 1.0, 1.0, 0.0),
        124: (5, 2, 1.0, 1.0, 0.0),
        173: (4, 2, 1.0, 2 / 3, 1 - 2 / 3),
        174: (3, 2, 1.0, 1 / 3, 1 - 1 / 3),
        275: (2, 1, 0.5, 1 / 3, 0.5 - 1 / 3),
        375: (1, 1, 0.5, 0.0, 0.5),
    }
    assert a.suggested_threshold == 174 and a.current is not None
    assert a.current.threshold == 100
    lines = threshold_lines(a)
    assert lines[0] == (
        "Suggested MQA threshold: 174 (current 100): 3 MQA(s), 66.7% [21%–94%] converted; the "
        "others 0.0% [0%–66%]; 100.0% of the converting accounts were MQAs, 33.3% of the others."
    )
    html = render_accounts_html(a)
    assert (
        '<tr class="good"><td class="l">174</td><td>3</td><td>2</td><td>66.7% [21%–94%]</td>'
        "<td>0.0% [0%–66%]</td><td>100.0%</td><td>33.3%</td><td>0.67</td><td>suggested</td></tr>"
        in html
    )


def test_a_contact_counts_at_an_mqa_only_inside_its_own_observation() -> None:
    from datetime import UTC, datetime

    rule = MqaRule(100.0, ("A", "B"), 2)
    day = [datetime(2026, 9, d, 23, 59, tzinfo=UTC) for d in (1, 2, 3)]
    o = AccountObservation(
        "company:1", "X", "B", "converted", 3, day[0], day[2],
        ((day[0], 80.0, 2), (day[1], 120.0, 1), (day[2], 130.0, 2)),
    )  # fmt: skip
    assert o.peak(2) == 130.0 and o.peak(1) == 130.0 and o.peak(3) is None
    assert not o.mqa_between(day[0], day[2], 100, rule)  # 120 with one person only
    assert o.mqa_between(day[0], day[2] + timedelta(seconds=1), 100, rule)
    assert rule.mqa(o) and not rule.mqa(o, 131)
    c = AccountObservation("company:2", "Y", "C", "converted", 3, day[0], day[2], o.trail)
    assert not rule.mqa(c) and not c.mqa_between(day[0], day[2] + timedelta(days=1), 0, rule)
    # blocked from MQA by an account force rule: never an MQA, whatever its grade and peak
    b = dataclasses.replace(o, blocked=True)
    assert not rule.mqa(b) and not b.mqa_between(day[0], day[2] + timedelta(days=1), 0, rule)


def test_cli_calibrate_prints_and_writes_the_accounts(sqls: Harness, tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    page = tmp_path / "calibration.html"
    args = ["--state", state, "calibrate", "--now", AS_OF.isoformat(), "--out",
            str(tmp_path / "s.yaml")]  # fmt: skip
    env = {"LEADSCORE_ACCOUNTS": "true", "COLUMNS": "120"}
    res = CliRunner().invoke(cli, [*args, "--html", str(page)], env=env)
    assert res.exit_code == 3, res.output  # too few contact conversions: nothing suggested
    lines = [line.rstrip() for line in res.output.splitlines()]
    start = lines.index(
        "Accounts: an account converted when any of its people (its contacts today) converted "
        "within the horizon; it is replayed"
    )
    assert lines[start + 2 : start + 13] == [
        "12 account(s): 11 with a known outcome, 3 converted (27.3%), 8 did not; left out: 1 "
        "with a member converted before",
        "engaging.",
        "Account conversion by account grade (today's grade)",
        "┏━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓",
        "┃ account grade ┃ accounts ┃ converted ┃        rate (95%) ┃",
        "┡━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩",
        "│ A             │        2 │         2 │ 100.0% [34%–100%] │",
        "│ B             │        3 │         0 │     0.0% [0%–56%] │",
        "│ C             │        4 │         1 │    25.0% [5%–70%] │",
        "│ D             │        2 │         0 │     0.0% [0%–66%] │",
        "└───────────────┴──────────┴───────────┴───────────────────┘",
    ]
    assert (
        "Lift of being at an MQA for a contact (converted at an MQA / at another account, 95% "
        "interval): 2.70 [0.31–23.69]." in lines
    )
    assert lines[-3:] == [
        "MQA threshold: not enough data: 2 converted and 3 not converted account(s) of grade A, "
        "B with a known outcome; at least",
        "10 of each are needed to suggest an MQA threshold (--min-accounts). Nothing suggested.",
        f"wrote {page} (report page)",
    ]
    html = page.read_text()
    assert '<div id="calibration-accounts"><h3>Accounts: conversion by grade and MQA</h3>' in html
    assert (
        '<tr><td class="l">at an MQA</td><td>20</td><td>3</td><td>15.0% [5%–36%]</td></tr>' in html
    )
    # --json: one document on stdout, the page's line on stderr
    res = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert res.exit_code == 3
    doc = json.loads(res.stdout)
    acc = doc["accounts"]
    assert (acc["converted"], acc["not_converted"], acc["labelled"]) == (3, 8, 11)
    assert {g["key"]: g["converted"] for g in acc["by_grade"]} == {"A": 2, "B": 0, "C": 1, "D": 0}
    assert acc["suggested_threshold"] is None and acc["insufficient"].startswith("not enough")
    northwind = next(o for o in acc["observations"] if o["account_id"] == "company:9012")
    assert (northwind["status"], northwind["peak_score"], northwind["mqa"]) == (
        "converted",
        174.0,
        True,
    )
    assert doc["suggestion"] is None and doc["counts"]["converted"] == 4
    # accounts off (the setting): no account coverage
    res = CliRunner().invoke(cli, [*args, "--json"], env={"COLUMNS": "120"})
    assert res.exit_code == 3 and json.loads(res.stdout)["accounts"] is None


def test_cli_min_accounts_lowers_the_account_minimum(sqls: Harness, tmp_path: Path) -> None:
    """--min-accounts 2: the threshold the API suggests with min_account_conversions=2 (above);
    a bad value: click's one error line naming the option, exit 2, nothing written."""
    out = tmp_path / "s.yaml"
    args = ["--state", str(tmp_path / "state.db"), "calibrate", "--now", AS_OF.isoformat(),
            "--out", str(out), "--json"]  # fmt: skip
    env = {"LEADSCORE_ACCOUNTS": "true"}
    res = CliRunner().invoke(cli, [*args, "--min-accounts", "2"], env=env)
    assert res.exit_code == 3  # too few contact conversions: no model suggested
    acc = json.loads(res.stdout)["accounts"]
    assert (acc["min_conversions"], acc["suggested_threshold"], acc["insufficient"]) == (
        2,
        174,
        None,
    )
    res = CliRunner().invoke(cli, [*args, "--min-accounts", "3"], env=env)
    acc = json.loads(res.stdout)["accounts"]
    assert acc["suggested_threshold"] is None
    assert acc["insufficient"] == (
        "not enough data: 2 converted and 3 not converted account(s) of grade A, B with a known "
        "outcome; at least 3 of each are needed to suggest an MQA threshold (--min-accounts)"
    )
    for bad, why in (("0", "0 is not in the range x>=1."), ("x", "'x' is not a valid integer")):
        res = CliRunner().invoke(cli, [*args, "--min-accounts", bad], env=env)
        assert res.exit_code == 2
        assert res.output.splitlines()[-1].startswith(
            f"Error: Invalid value for '--min-accounts': {why}"
        )
    assert not out.exists()


def _big_account(store: StateStore, n: int, domain: str, start: datetime) -> None:
    """n managers at one e-mail domain, each on two product pages on consecutive days (member
    i on days i % 20 and i % 20 + 1 after `start`)."""
    contacts = [Contact(f"{domain}-{i}", f"p{i}@{domain}", "P", str(i), "Marketing Manager")
                for i in range(n)]  # fmt: skip
    store.upsert_contacts(CRM, contacts, at=start)
    store.insert_events(
        CRM,
        [
            Event(
                "web",
                f"{c.id}-{d}",
                c.id,
                "page_view",
                start + timedelta(days=i % 20 + d, hours=9),
                {"url": "https://x.io/product"},
            )
            for i, c in enumerate(contacts)
            for d in (0, 1)
        ],
    )
    store.set_contact_accounts(
        CRM, [ContactAccount(c.id, f"domain:{domain}", "email_domain") for c in contacts], start
    )


def test_a_5000_member_account_is_replayed_in_linear_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each member is scored once per day it had an event (2 days each), not at each of the
    account's 21 checkpoints: 10,000 engine runs for 5,000 members, 5,000 for 2,500 (a
    re-score of every member at every checkpoint would be about 110,000). The last checkpoint
    is what scoring every member there from scratch and rolling them up gives."""
    import connector.calibrate.accounts as mod
    from connector.account_stage import AccountStage
    from connector.calibrate.observe import Dataset, as_plain_lead
    from connector.scoring.accounts import member_hits, score_account
    from connector.scoring.engine import score

    start = NOW - timedelta(days=200)
    store = StateStore.open(tmp_path / "state.db")
    calls = [0]

    def counted(*args: Any, **kw: Any) -> Any:
        calls[0] += 1
        return score(*args, **kw)

    monkeypatch.setattr(mod, "score", counted)
    model = load_model()
    try:
        runs: dict[int, int] = {}
        for n, domain in ((2500, "half.com"), (5000, "big.com")):
            _big_account(store, n, domain, start)
            ds = Dataset(store, CRM, model, timedelta(days=90), NOW)
            calls[0] = 0
            a = account_coverage(ds, model)
            assert a is not None
            runs[n] = calls[0]
            big = next(o for o in a.observations if o.account_id == f"domain:{domain}")
            assert (big.members, big.status, len(big.trail)) == (n, "not_converted", 21)
        assert runs == {2500: 2 * 2500, 5000: 2 * 5000 + 2 * 2500}  # the first account again
        # the last checkpoint from scratch: every member scored there, rolled up
        at, got, engaged = big.trail[-1]
        assert at == datetime.combine((start + timedelta(days=20)).date(), time.max, tzinfo=UTC)
        stage = AccountStage(cast(Any, SimpleNamespace(store=store, crm=CRM, model=model)))
        account, _ = stage._account_from("domain:big.com", {})
        people = []
        for contact, events in store.iter_contacts_with_events(
            CRM, [f"big.com-{i}" for i in range(5000)]
        ):
            r = score(as_plain_lead(contact, at), events, None, model, at)
            times = {e.key: e.occurred_at.timestamp() for e in events}
            people.append(
                AccountMember(contact.id, f"P {contact.last_name}", contact.job_title,
                              "manager", r.grade, r.engagement_points, member_hits(r, times))
            )  # fmt: skip
        whole = score_account(stage.ca, account, people, at)
        assert (got, engaged) == (whole.score, len(whole.engaged_contacts)) == (got, 5000)
    finally:
        store.close()
