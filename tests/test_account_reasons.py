"""What a company's `leadscore_account_reasons` shows (issue 21): whole reasons only, the
largest first and the grade, then "… +N more"; names shortened and cleaned for reading (a
10 kB name, control characters, a lone surrogate), never cut in the middle of a name; the full
reasons kept in the state DB and shown by `explain --account`. An account of 5,000 members
end to end against the HubSpot sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.model.loader import load_model
from connector.sandbox.demo_portal import PRICING, PRODUCT, _Builder
from connector.scoring.accounts import compile_accounts, score_account, shown_text
from connector.state.store import StateStore
from connector.types import ACCOUNT_REASONS_MAX, Account, AccountMember, Company

from .conftest import NOW, Harness
from .test_sync_accounts import accounts_harness

LONG = "Zed" + "x" * 10_237  # a 10 kB first name, as a bad import leaves it
CONTROLS = "Ruiz\x00\x1b[31m"
CUT = "Jos\ud83d"  # half of an emoji
BIG = "9100"
MEMBERS = 5000


def test_shown_text_keeps_names_whole_or_marks_the_cut() -> None:
    assert shown_text("Dana Whitfield", 60) == "Dana Whitfield"
    assert shown_text(LONG, 60) == "Zed" + "x" * 56 + "…"
    assert shown_text("Maria del Carmen Fernández-Rodríguez de la Fuente y Gómez-Ortiz", 60) == (
        "Maria del Carmen Fernández-Rodríguez de la Fuente y…"
    )  # cut at a space
    assert shown_text(CONTROLS, 60) == "Ruiz[31m"  # NUL and ESC dropped
    assert shown_text(CUT, 60) == "Jos\ufffd"
    assert shown_text("A\tB\nC", 60) == "A B C"


def _members() -> list[AccountMember]:
    t = (NOW - timedelta(days=2)).timestamp()
    odd = [
        AccountMember("1", LONG, "VP Marketing", "vp", "A", 90, (("pricing_page", t),)),
        AccountMember(
            "2", CONTROLS, "Marketing Manager", "manager", "A", 80, (("pricing_page", t),)
        ),
        AccountMember(
            "3", CUT, "Analyst" + "\x07" * 3, "individual", "B", 70, (("product_page", t),)
        ),
    ]
    rest = [
        AccountMember(
            str(10 + i),
            f"Person {i}",
            None,
            "individual",
            "C",
            10 + i % 5,
            (("product_page", t - i),),
        )
        for i in range(MEMBERS - 3)
    ]
    return odd + rest


def test_a_5000_member_account_with_odd_names_reads_whole_and_stores_every_reason(
    tmp_path: Path,
) -> None:
    loaded = load_model()
    ca = compile_accounts(loaded, loaded.target_accounts)
    account = Account(
        f"company:{BIG}",
        Company(domain="bigco.com", name="Bigco", employee_count=4000, country="US"),
        crm_id=BIG,
    )
    result = score_account(ca, account, _members(), NOW)
    long_shown = "Zed" + "x" * 56 + "…"
    texts = [r.text for r in result.reasons]
    assert texts[0] == (
        f"engagement of 10 people (at most 50 each): {long_shown} +50 (of 90), Ruiz[31m +50 "
        "(of 80), Jos\ufffd +50 (of 70), Person 994 +14, …and 6 more (top 10 of 5000 engaged)"
    )
    assert texts[1] == (
        f"5000 people engaged in 30 days: {long_shown} (VP Marketing), Ruiz[31m (Marketing "
        "Manager), Jos\ufffd (Analyst), Person 994, …and 4996 more"
    )
    crm_text = result.top_reasons()
    assert len(crm_text) <= ACCOUNT_REASONS_MAX == 480
    engagement = [r for r in result.reasons if r.kind == "engagement"]
    assert len(engagement) == 4  # roll-up, breadth, committee, pricing together
    # whole reasons: the two largest, the grade, and the two left out counted
    assert crm_text == (
        f"+248 {texts[0]}; +30 {texts[1]}; account grade C: company size 51-5,000, target "
        "country; … +2 more"
    )
    # every character encodes: the CRM's JSON, orjson (the CLI's --json), UTF-8
    crm_text.encode("utf-8")
    assert json.loads(orjson.dumps({"v": crm_text})) == {"v": crm_text}
    # the state DB keeps every reason, whole
    store = StateStore.open(tmp_path / "state.db")
    try:
        store.save_account_score(
            "hubspot", result, company_id=BIG, domain="bigco.com", name="Bigco"
        )
        stored = store.account_score("hubspot", f"company:{BIG}")
        assert stored is not None and stored.reasons == result.reasons
    finally:
        store.close()


def test_a_reason_boundary_cut_keeps_the_grade_and_counts_what_is_left_out() -> None:
    from connector.types import _fit_reasons

    parts = ["+50 a" * 10, "+30 b" * 10, "+20 c" * 10]
    assert _fit_reasons(parts, ["grade A: x"], 200) == "; ".join([*parts, "grade A: x"])
    assert (
        _fit_reasons(parts, ["grade A: x"], 125) == f"{parts[0]}; {parts[1]}; grade A: x; … +1 more"
    )
    assert _fit_reasons(parts, ["grade A: x"], 124) == f"{parts[0]}; grade A: x; … +2 more"
    assert _fit_reasons(parts, ["grade A: x"], 30) == "grade A: x; … +3 more"
    # a grade alone longer than the limit: cut at a space, marked
    assert _fit_reasons([], ["grade A: " + "word " * 20], 30) == "grade A: word word word word…"


def _big_portal() -> dict[str, Any]:
    b = _Builder(seed=5)
    names = [("Dana", LONG), ("Robin", CONTROLS), (CUT, "Okafor")]
    titles = ["VP Marketing", "Marketing Manager", "Marketing Analyst"]
    for i in range(MEMBERS):
        cid = str(20_000 + i)
        first, last = names[i] if i < 3 else (f"P{i}", "Bigco")
        b.contact(
            cid,
            first,
            last,
            f"p{i}@bigco.com",
            titles[i] if i < 3 else None,
            "lead",
            company="Bigco",
            country="US",
        )
        if i < 3:
            b.view(cid, -3, PRICING)
            b.view(cid, -2, PRICING)
            b.webinar(cid, -4, "Scoring that sales trusts", 60)
        elif i % 10 == 0:
            b.view(cid, -1 - i % 20, PRODUCT[i % len(PRODUCT)])
    data = b.fixture(forms=True)
    data["companies"] = [
        {
            "id": BIG,
            "properties": {
                "name": "Bigco",
                "domain": "bigco.com",
                "industry": "COMPUTER_SOFTWARE",
                "numberofemployees": "4000",
                "country": "US",
            },
        },
    ]
    data["associations"] = [
        {"contact": str(20_000 + i), "company": BIG, "primary": True} for i in range(MEMBERS)
    ]
    return data


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    yield from accounts_harness(tmp_path_factory.mktemp("big"), portal=_big_portal())


def test_a_5000_member_account_is_written_to_hubspot_whole_and_explained_in_full(
    big: Harness,
) -> None:
    summary = big.pipeline.sync()
    assert summary.status == "ok", summary.message
    assert summary.dead_lettered == 0 and summary.bad_records == 0
    stored = big.store.account_score("hubspot", f"company:{BIG}")
    assert stored is not None and stored.members == MEMBERS
    shown = big.sb.company(BIG).properties["leadscore_account_reasons"]
    long_shown = "Dana " + "Zed" + "x" * 51 + "…"
    assert shown == (
        f"+220 engagement of 10 people (at most 50 each): {long_shown} +50 (of 75), Robin "
        "Ruiz[31m +50 (of 75), Jos\ufffd Okafor +50 (of 75), P10 Bigco +10, …and 6 more (top "
        "10 of 502 engaged); account grade B: company size 51-5,000, target industry; … +3 "
        "more"
    )  # breadth, pricing together and the committee: in the state DB and explain
    assert len(shown) <= ACCOUNT_REASONS_MAX
    # every member shows the account's score (written once each)
    ids = big.written_ids()
    assert len(ids) == len(set(ids)) == MEMBERS + 1
    # explain --account: every reason, whole (not the CRM's cut), as JSON an admin can parse
    res = CliRunner().invoke(
        cli,
        ["--state", str(big.store.path), "explain", "--account", "bigco.com", "--json"],
        env={"LEADSCORE_ACCOUNTS": "true", "LEADSCORE_HUBSPOT_TOKEN": "x"},
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    texts = [p["text"] for p in doc["points"]]
    assert texts == [r.text for r in stored.reasons]
    assert [p["rule"] for p in doc["points"]][:4] == [
        "member_engagement",
        "breadth",
        "committee",
        "pricing_together",
    ]
    # its people by their names as stored (free text past 10,000 characters is cut when
    # read: connector.parse.MAX_TEXT; a lone surrogate replaced)
    assert doc["points"][0]["people"][:3] == [
        f"Dana {LONG[:10_000]}",
        "Robin " + CONTROLS,
        "Jos\ufffd Okafor",
    ]


def test_explain_account_in_a_terminal_shows_names_shortened_and_no_control_character(
    big: Harness,
) -> None:
    if big.store.account_score("hubspot", f"company:{BIG}") is None:
        assert big.pipeline.sync().status == "ok"
    res = CliRunner().invoke(
        cli,
        ["--state", str(big.store.path), "explain", "--account", "bigco.com"],
        env={"LEADSCORE_ACCOUNTS": "true", "LEADSCORE_HUBSPOT_TOKEN": "x", "COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x00" not in res.output  # nothing reaches the tty
    assert "Robin Ruiz[31m" in res.output
    assert "Dana Zed" + "x" * 51 + "…" in res.output  # 60 characters of the 10 kB name
    assert "x" * 200 not in res.output.replace("\n", "").replace("│", "").replace(" ", "")
    # the 50 highest-scored members, then how many more (--json lists all)
    assert "Members: 5000 (the 50 highest scored; `--json` lists all)" in res.output
    assert "…and 4950 more member(s)" in res.output
    assert len(res.output.splitlines()) < 250
