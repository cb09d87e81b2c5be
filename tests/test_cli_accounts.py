# ruff: noqa: E501  (the expected tables are 100-column lines, kept whole to compare exactly)
"""`leadscore accounts` and `leadscore explain --account` (issue 21) on the demo portal synced
with accounts on at NOW, through the CLI: exact tables at 100 columns, exact JSON, errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from connector.cli import cli
from connector.demo import run_demo

from .conftest import NOW


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's state DB: the HubSpot sandbox's demo portal (13 companies, the Northwind
    Data committee) synced with accounts on at NOW."""
    db = tmp_path_factory.mktemp("acc") / "demo.db"
    out = tmp_path_factory.mktemp("acc-out") / "out.txt"
    with out.open("w") as f:
        run_demo(Console(file=f, width=200), state_path=db, now=NOW)
    return db


def _run(db: Path, *args: str, columns: str = "100") -> tuple[int, list[str]]:
    res = CliRunner().invoke(cli, ["--state", str(db), *args], env={"COLUMNS": columns})
    return res.exit_code, [line.rstrip() for line in res.output.splitlines()]


ACCOUNTS_TOP3 = [
    "The 3 hottest of 12 scored account(s) (6 MQA)",  # every MQA, not those shown
    "┏━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓",
    "┃ account                 ┃ grade ┃ score ┃ MQA                ┃ engaged people                    ┃",
    "┡━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩",
    "│ Acme Analytics          │   A   │   375 │ MQA: score 375 ≥   │ Hannah Foster, Marketing Operati… │",
    "│ acme-analytics.com      │       │       │ 100, grade A, 6    │ Cameron Larsen, Software Engineer │",
    "│ 6 members               │       │       │ people engaged     │ Mateo Rossi, Sales Development R… │",
    "│                         │       │       │                    │ …and 3 more                       │",
    "│ Northwind Logistics     │   C   │   315 │ —                  │ Blake Rossi, Marketing Operation… │",
    "│ northwind-logistics.com │       │       │                    │ Rowan Garcia, Product Marketing … │",
    "│ 5 members               │       │       │                    │ Kendall Anderson, CEO             │",
    "│                         │       │       │                    │ …and 2 more                       │",
    "│ Stark Industries        │   C   │   308 │ —                  │ Omar Novak, Marketing Operations… │",
    "│ stark-industries.com    │       │       │                    │ Harper Hughes, Marketing Operati… │",
    "│ 5 members               │       │       │                    │ Sofia Rossi, Marketing Manager    │",
    "│                         │       │       │                    │ …and 2 more                       │",
    "└─────────────────────────┴───────┴───────┴────────────────────┴───────────────────────────────────┘",
]


def test_accounts_lists_the_hottest_with_grade_mqa_and_engaged_people(demo_db: Path) -> None:
    code, lines = _run(demo_db, "accounts", "--top", "3")
    assert code == 0
    assert lines == ACCOUNTS_TOP3
    assert max(len(line) for line in lines) <= 100


def test_accounts_json_has_every_scored_field_and_the_people(demo_db: Path) -> None:
    res = CliRunner().invoke(cli, ["--state", str(demo_db), "accounts", "--top", "13", "--json"])
    assert res.exit_code == 0
    assert res.stdout.count("\n") == 1
    doc = json.loads(res.stdout)
    assert (doc["scored"], doc["mqas"]) == (12, 6)
    # every scored account (12 of the 13 companies: Vandelay Industries has no member)
    assert [(a["name"], a["grade"], a["score"], a["mqa"]) for a in doc["accounts"]] == [
        ("Acme Analytics", "A", 375.0, True),
        ("Northwind Logistics", "C", 315.0, False),
        ("Stark Industries", "C", 308.0, False),
        ("Initech", "B", 275.0, True),
        ("Northwind Data", "A", 174.0, True),
        ("Hooli", "B", 154.0, True),
        ("TinyShop", "D", 149.0, False),
        ("Globex", "B", 131.0, True),
        ("Wayne Enterprises", "B", 124.0, True),
        ("Umbrella Health", "C", 50.0, False),
        ("RivalScore", "D", 50.0, False),  # a competitor: forced D
        ("Stanford University", "C", 10.0, False),
    ]
    northwind = next(a for a in doc["accounts"] if a["name"] == "Northwind Data")
    assert northwind == {
        "account_id": "company:9012",
        "domain": "northwind-data.com",
        "engaged": [
            {"contact_id": "154", "grade": "B",
             "name": "Marcus Lee", "score": 40.0, "title": "Marketing Manager"},
            {"contact_id": "153", "grade": "A",
             "name": "Elena Marsh", "score": 24.0, "title": "VP Marketing"},
            {"contact_id": "155", "grade": "C",
             "name": "Nadia Okafor", "score": 20.0, "title": "Data Analyst"},
            {"contact_id": "156", "grade": "B",
             "name": "Tom Becker", "score": 15.0, "title": "Revenue Operations Analyst"},
        ],
        "grade": "A",
        "label": "Northwind Data (northwind-data.com)",
        "members": 4,
        "mqa": True,
        "mqa_reason": "score 174 ≥ 100, grade A, 4 people engaged",
        "name": "Northwind Data",
        "score": 174.0,
    }  # fmt: skip


EXPLAIN_NORTHWIND = [
    "Northwind Data (northwind-data.com) — company:9012: score 174, grade A, MQA (score 174 ≥ 100, grade",
    "A, 4 people engaged); model 2026.12-default, scored 2026-11-01 12:00 UTC",
    "Points",
    "┏━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓",
    "┃ points ┃ rule                   ┃ why                           ┃ people                         ┃",
    "┡━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩",
    "│    +99 │ member_engagement      │ engagement of 4 people (at    │ Marcus Lee, Elena Marsh, Nadia │",
    "│        │                        │ most 50 each): Marcus Lee     │ Okafor, Tom Becker             │",
    "│        │                        │ +40, Elena Marsh +24, Nadia   │                                │",
    "│        │                        │ Okafor +20, Tom Becker +15    │                                │",
    "│    +30 │ breadth                │ 4 people engaged in 30 days:  │ Marcus Lee, Elena Marsh, Nadia │",
    "│        │                        │ Marcus Lee (Marketing         │ Okafor, Tom Becker             │",
    "│        │                        │ Manager), Elena Marsh (VP     │                                │",
    "│        │                        │ Marketing), Nadia Okafor      │                                │",
    "│        │                        │ (Data Analyst), Tom Becker    │                                │",
    "│        │                        │ (Revenue Operations Analyst)  │                                │",
    "│    +20 │ committee              │ buying committee, 3 roles:    │ Elena Marsh, Marcus Lee, Nadia │",
    "│        │                        │ decision maker (Elena Marsh); │ Okafor, Tom Becker             │",
    "│        │                        │ champion (Marcus Lee);        │                                │",
    "│        │                        │ practitioner (Nadia Okafor,   │                                │",
    "│        │                        │ Tom Becker)                   │                                │",
    "│    +25 │ pricing_together       │ pricing or product pages by   │ Marcus Lee, Elena Marsh, Nadia │",
    "│        │                        │ 2+ people within 7 days:      │ Okafor, Tom Becker             │",
    "│        │                        │ Marcus Lee, Elena Marsh,      │                                │",
    "│        │                        │ Nadia Okafor, Tom Becker      │                                │",
    "│    +30 │ account_target         │ target account (on the        │ —                              │",
    "│        │                        │ target-account list)          │                                │",
    "│    +20 │ account_size_midmarket │ company size 51-5,000 (400    │ —                              │",
    "│        │                        │ employees)                    │                                │",
    "│    +15 │ account_industry       │ target industry (industry     │ —                              │",
    "│        │                        │ computer software)            │                                │",
    "│    +10 │ account_revenue        │ revenue of $10M or more       │ —                              │",
    "│        │                        │ (revenue $60M)                │                                │",
    "│     +5 │ account_country        │ target country (country US)   │ —                              │",
    "│ fit 80 │ grade                  │ account grade A: target       │ —                              │",
    "│        │                        │ account, company size         │                                │",
    "│        │                        │ 51-5,000                      │                                │",
    "└────────┴────────────────────────┴───────────────────────────────┴────────────────────────────────┘",
    "Members: 4",
    "┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━━━┳━━━━━━━━━┓",
    "┃ contact                        ┃ title              ┃ score ┃ grade ┃ stage ┃ engaged ┃ counted ┃",
    "┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━━━╇━━━━━━━━━┩",
    "│ marcus.lee@northwind-data.com  │ Marketing Manager  │    40 │   B   │ lead  │      40 │      40 │",
    "│ elena.marsh@northwind-data.com │ VP Marketing       │    24 │   A   │ lead  │      24 │      24 │",
    "│ nadia.okafor@northwind-data.c… │ Data Analyst       │    20 │   C   │ lead  │      20 │      20 │",
    "│ tom.becker@northwind-data.com  │ Revenue Operation… │    15 │   B   │ lead  │      15 │      15 │",
    "└────────────────────────────────┴────────────────────┴───────┴───────┴───────┴─────────┴─────────┘",
    "History",
    "  2026-11-01 12:00  2026.12-default: score 174, grade A, MQA",
]


def test_explain_account_by_domain_gives_every_point_with_its_people(demo_db: Path) -> None:
    code, lines = _run(demo_db, "explain", "--account", "northwind-data.com")
    assert code == 0
    assert lines == EXPLAIN_NORTHWIND
    # the same account by its CRM company id and by its account id
    assert _run(demo_db, "explain", "--account", "9012")[1] == EXPLAIN_NORTHWIND
    assert _run(demo_db, "explain", "--account", "company:9012")[1] == EXPLAIN_NORTHWIND


def test_explain_account_says_what_did_not_count(demo_db: Path) -> None:
    res = CliRunner().invoke(
        cli, ["--state", str(demo_db), "explain", "--account", "acme-analytics.com", "--json"]
    )
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert (doc["score"], doc["grade"], doc["mqa"]) == (375.0, "A", True)
    assert doc["not_counted"] == [
        "Hannah Foster: 79 of 129 points over the 50-point cap per person",
        "Cameron Larsen: 76 of 126 points over the 50-point cap per person",
        "Mateo Rossi: 72 of 122 points over the 50-point cap per person",
        "Rowan Okafor: 67 of 117 points over the 50-point cap per person",
        "Dana Whitfield: 60 of 110 points over the 50-point cap per person",
        "Robin Hale: 10 of 60 points over the 50-point cap per person",
    ]
    members = [
        (m["name"], m["score"], m["grade"], m["stage"], m["engagement_points"], m["counted_points"])
        for m in doc["members"]
    ]
    # Robin Hale: 60 points, grade B, an MQL by the MQA's lower bar (60 instead of 100)
    assert members == [
        ("Hannah Foster", 129.0, "B", "marketingqualifiedlead", 129.0, 50.0),
        ("Cameron Larsen", 126.0, "C", "marketingqualifiedlead", 126.0, 50.0),
        ("Mateo Rossi", 122.0, "B", "marketingqualifiedlead", 122.0, 50.0),
        ("Rowan Okafor", 117.0, "B", "marketingqualifiedlead", 117.0, 50.0),
        ("Dana Whitfield", 110.0, "A", "marketingqualifiedlead", 110.0, 50.0),
        ("Robin Hale", 60.0, "B", "marketingqualifiedlead", 60.0, 50.0),
    ]
    assert [(p["rule"], p["points"]) for p in doc["points"]] == [
        ("member_engagement", 300.0),
        ("breadth", 30.0),
        ("committee", 20.0),
        ("pricing_together", 25.0),
        ("account_target", 30.0),
        ("account_size_midmarket", 20.0),
        ("account_industry", 15.0),
        ("account_revenue", 10.0),
        ("account_country", 5.0),
        ("grade", 80.0),
    ]
    assert doc["history"] == [
        {"grade": "A", "model_version": "2026.12-default", "mqa": True, "score": 375.0,
         "scored_at": "2026-11-01T12:00:00+00:00"}
    ]  # fmt: skip


def test_explain_account_says_why_an_account_is_no_mqa(demo_db: Path) -> None:
    """An account that is no MQA says which part of the MQA definition it misses: a hot
    account of grade C (Northwind Logistics, 315 points), and a competitor (RivalScore: its
    force rule blocks it, besides its score, grade and one engaged person); an MQA none."""
    code, lines = _run(demo_db, "explain", "--account", "northwind-logistics.com", columns="200")
    assert code == 0
    assert lines[0].startswith(
        "Northwind Logistics (northwind-logistics.com) — company:9004: score 315, grade C, "
        "not an MQA (grade C, not A or B); model 2026.12-default"
    ), lines[0]
    got = {}
    for key in ("rivalscore.io", "acme-analytics.com"):
        res = CliRunner().invoke(
            cli, ["--state", str(demo_db), "explain", "--account", key, "--json"]
        )
        assert res.exit_code == 0
        got[key] = json.loads(res.stdout)["not_mqa"]
    assert got == {
        "rivalscore.io": [
            "blocked: competitor domain",
            "score 50 < 100",
            "grade D, not A or B",
            "1 person engaged, 2 needed",
        ],
        "acme-analytics.com": [],
    }


def test_explain_account_suggests_the_accounts_a_part_of_a_name_or_domain_names(
    demo_db: Path,
) -> None:
    """`northwind` names no account (not a whole name, domain or id): the error says so, after
    a note naming the accounts whose name or domain contains it, highest score first; a key
    shorter than 3 characters, or matching nothing, gets the error alone."""
    res = CliRunner().invoke(cli, ["--state", str(demo_db), "explain", "--account", "NorthWind"])
    assert res.exit_code == 1
    assert res.output == (
        "note: did you mean Northwind Logistics (northwind-logistics.com), Northwind Data "
        "(northwind-data.com)?\n"
        f"error: no scored account 'NorthWind' in {demo_db} (a domain, a CRM company id, an "
        "account id or a company name; `leadscore accounts` lists them)\n"
    )
    res = CliRunner().invoke(cli, ["--state", str(demo_db), "explain", "--account", "-logistics"])
    assert res.output.startswith(
        "note: did you mean Northwind Logistics (northwind-logistics.com)?\n"
    )
    for key in ("no", "zzz-nowhere"):
        res = CliRunner().invoke(cli, ["--state", str(demo_db), "explain", "--account", key])
        assert res.exit_code == 1 and res.output.startswith("error: no scored account"), key


def test_explain_account_errors_are_one_line_with_an_exit_code(demo_db: Path) -> None:
    res = CliRunner().invoke(cli, ["--state", str(demo_db), "explain", "--account", "nowhere.com"])
    assert res.exit_code == 1
    assert res.output == (
        f"error: no scored account 'nowhere.com' in {demo_db} (a domain, a CRM company id, an "
        "account id or a company name; `leadscore accounts` lists them)\n"
    )
    res = CliRunner().invoke(cli, ["--state", str(demo_db), "explain"])
    assert (res.exit_code, res.output) == (
        2,
        "error: give a contact (e-mail or id) or --account DOMAIN|ID\n",
    )
    both = ["--state", str(demo_db), "explain", "casey@initech.com", "--account", "initech.com"]
    assert CliRunner().invoke(cli, both).exit_code == 2


def test_accounts_without_a_state_db_says_so(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["--state", str(tmp_path / "none.db"), "accounts"])
    assert res.exit_code == 1
    assert "no state DB at" in res.output and "run `leadscore sync` first" in res.output


def test_accounts_on_a_state_db_without_account_scores_says_how_to_get_them(
    tmp_path: Path,
) -> None:
    from connector.state.store import StateStore

    db = tmp_path / "s.db"
    StateStore.open(db).close()
    res = CliRunner().invoke(cli, ["--state", str(db), "accounts"])
    assert (res.exit_code, res.output) == (
        0,
        "No scored accounts yet: turn on LEADSCORE_ACCOUNTS=true and run `leadscore sync`.\n",
    )
    res = CliRunner().invoke(cli, ["--state", str(db), "accounts", "--json"])
    assert json.loads(res.stdout) == {"accounts": [], "mqas": 0, "scored": 0}
    # with account scoring on already, only the sync is missing
    res = CliRunner().invoke(
        cli, ["--state", str(db), "accounts"], env={"LEADSCORE_ACCOUNTS": "true"}
    )
    assert (res.exit_code, res.output) == (
        0,
        "No scored accounts yet: run `leadscore sync` to score them.\n",
    )


def test_accounts_counts_every_mqa_whatever_the_rows_shown(demo_db: Path) -> None:
    for top, shown in (("1", 1), ("3", 3), ("20", 12)):
        code, lines = _run(demo_db, "accounts", "--top", top)
        assert code == 0
        assert lines[0] == f"The {shown} hottest of 12 scored account(s) (6 MQA)"


@pytest.fixture
def dirty_db(demo_db: Path, tmp_path: Path) -> Path:
    """The demo's state DB with CRM text as testers found it: control characters in a company
    name, a 10 kB name and domain, a contact's name and title with escape sequences; and a
    company merged into Acme Analytics (9020), an e-mail-domain account beside Acme's record."""
    from connector.state.store import StateStore
    from connector.types import AccountResult, CrmCompany

    db = tmp_path / "dirty.db"
    with sqlite3.connect(demo_db) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
        dst.execute(
            "UPDATE account_scores SET name = ? WHERE account_id = 'company:9001'",
            ("Ctrl\x00\x07\x1b[31mRed\r\nCo",),
        )
        dst.execute(
            "UPDATE account_scores SET domain = ?, name = ? WHERE account_id = 'company:9004'",
            ("x" * 10_000 + ".com", "Big " + "N" * 10_000),
        )
        dst.execute(
            "UPDATE contacts SET first_name = ?, last_name = ? WHERE id = '112'",
            ("Robin\x1b[2J", "\x1b]0;pwned\x07Hale\x00\n[bold]x"),
        )
    store = StateStore.open(db)
    try:
        old = CrmCompany("9020", domain="old-acme.com", name="Old Acme", merged_into="9001")
        store.upsert_crm_companies("hubspot", [old], NOW)
        mail = AccountResult(
            "domain:acme-analytics.com", 40.0, 40.0, 0.0, "C", False, None, 1, (),
            "2026.12-default", "1f804c095b9b", NOW, None,
        )  # fmt: skip
        store.save_account_score(
            "hubspot", mail, company_id=None, domain="acme-analytics.com", name=None
        )
    finally:
        store.close()
    return db


def test_accounts_and_explain_account_show_crm_text_cleaned_and_shortened(dirty_db: Path) -> None:
    res = CliRunner().invoke(
        cli, ["--state", str(dirty_db), "accounts", "--top", "2"], env={"COLUMNS": "100"}
    )
    assert res.exit_code == 0
    for control in ("\x1b", "\x00", "\x07", "\r"):
        assert control not in res.output
    assert [line.rstrip() for line in res.output.splitlines()] == [
        "The 2 hottest of 13 scored account(s) (6 MQA)",
        "┏━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━┳━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓",
        "┃ account                  ┃ grade ┃ score ┃ MQA                ┃ engaged people                   ┃",
        "┡━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━╇━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩",
        "│ Ctrl[31mRed  Co          │   A   │   375 │ MQA: score 375 ≥   │ Hannah Foster, Marketing Operat… │",
        "│ acme-analytics.com       │       │       │ 100, grade A, 6    │ Cameron Larsen, Software Engine… │",
        "│ 6 members                │       │       │ people engaged     │ Mateo Rossi, Sales Development … │",
        "│                          │       │       │                    │ …and 3 more                      │",
        "│ Big NNNNNNNNNNNNNNNNNNN… │   C   │   315 │ —                  │ Blake Rossi, Marketing Operatio… │",
        "│ xxxxxxxxxxxxxxxxxxxxxxx… │       │       │                    │ Rowan Garcia, Product Marketing… │",
        "│ 5 members                │       │       │                    │ Kendall Anderson, CEO            │",
        "│                          │       │       │                    │ …and 2 more                      │",
        "└──────────────────────────┴───────┴───────┴────────────────────┴──────────────────────────────────┘",
    ]
    code, lines = _run(dirty_db, "explain", "--account", "9004")
    assert code == 0
    assert lines[:3] == [  # a 10 kB name and domain: 60 characters each
        "Big NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN…",
        "(xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…) — company:9004: score 315, grade C,",
        "not an MQA (grade C, not A or B); model 2026.12-default, scored 2026-11-01 12:00 UTC",
    ]
    res = CliRunner().invoke(
        cli, ["--state", str(dirty_db), "explain", "--account", "9001"], env={"COLUMNS": "100"}
    )
    for control in ("\x1b", "\x00", "\x07", "\r"):
        assert control not in res.output
    lines = [line.rstrip() for line in res.output.splitlines()]
    assert lines[:2] == [
        "Ctrl[31mRed  Co (acme-analytics.com) — company:9001: score 375, grade A, MQA (score 375 ≥ 100, grade",
        "A, 6 people engaged); model 2026.12-default, scored 2026-11-01 12:00 UTC",
    ]
    assert lines[8:10] == [  # a member's name as reasons show it, its markup kept literal
        "│        │                        │ +50 (of 129), Cameron Larsen  │ Dana Whitfield, Robin[2J       │",
        "│        │                        │ +50 (of 126), Mateo Rossi +50 │ ]0;pwnedHale [bold]x           │",
    ]
    # --json: the stored values as they are
    res = CliRunner().invoke(
        cli, ["--state", str(dirty_db), "explain", "--account", "9004", "--json"]
    )
    doc = json.loads(res.stdout)
    assert (len(doc["name"]), len(doc["domain"])) == (10_004, 10_004)


EXPLAIN_ACME_HEAD = [
    "Acme Analytics (acme-analytics.com) — company:9001: score 375, grade A, MQA (score 375 ≥ 100, grade",
    "A, 6 people engaged); model 2026.12-default, scored 2026-11-01 12:00 UTC",
]


def test_explain_account_reads_a_domain_as_people_write_it(demo_db: Path) -> None:
    for key in (
        "acme-analytics.com",
        "ACME-Analytics.COM",
        "www.acme-analytics.com",
        "https://acme-analytics.com/",
        "http://www.acme-analytics.com/pricing",
        "domain:ACME-analytics.com",
        # as a CRM company's domain field reads them (`enrich.email.company_domain`)
        "info@acme-analytics.com",
        "acme-analytics.com:443",
        "acme-analytics.com/about",
        " Acme-Analytics.com. ",
    ):
        code, lines = _run(demo_db, "explain", "--account", key)
        assert (code, lines[:2]) == (0, EXPLAIN_ACME_HEAD), key


def test_explain_account_of_a_merged_company_shows_its_survivor(dirty_db: Path) -> None:
    for key in ("9020", "company:9020"):
        code, lines = _run(dirty_db, "explain", "--account", key)
        assert code == 0
        assert lines[:2] == [
            "note: company 9020 was merged into 9001: showing its survivor",
            "Ctrl[31mRed  Co (acme-analytics.com) — company:9001: score 375, grade A, MQA (score 375 ≥ 100, grade",
        ]
    res = CliRunner().invoke(
        cli, ["--state", str(dirty_db), "explain", "--account", "9020", "--json"]
    )
    doc = json.loads(res.stdout)
    assert (doc["account_id"], doc["notes"]) == (
        "company:9001",
        ["company 9020 was merged into 9001: showing its survivor"],
    )


def test_explain_account_of_a_domain_with_several_accounts_names_the_others(
    dirty_db: Path,
) -> None:
    code, lines = _run(dirty_db, "explain", "--account", "www.acme-analytics.com")
    assert code == 0
    assert lines[:3] == [
        "note: showing company:9001; the domain also matches domain:acme-analytics.com (acme-analytics.com,",
        "score 40): `leadscore explain --account ID` for one of them",
        "Ctrl[31mRed  Co (acme-analytics.com) — company:9001: score 375, grade A, MQA (score 375 ≥ 100, grade",
    ]
    res = CliRunner().invoke(
        cli, ["--state", str(dirty_db), "explain", "--account", "acme-analytics.com", "--json"]
    )
    doc = json.loads(res.stdout)
    assert (doc["account_id"], doc["also_matching"]) == (
        "company:9001",
        [{"account_id": "domain:acme-analytics.com", "name": "acme-analytics.com", "score": 40.0}],
    )
    # the e-mail-domain account itself, by its account id
    code, lines = _run(dirty_db, "explain", "--account", "domain:acme-analytics.com")
    assert lines[0].startswith("acme-analytics.com — domain:acme-analytics.com: score 40, grade C")


def test_explain_account_prints_a_force_rule_s_description_as_text(
    demo_db: Path, tmp_path: Path
) -> None:
    """The model file's description of a force rule is text in the header's "why not an
    MQA": `competitor [/] rival` ended `explain --account` in a MarkupError (a review)."""
    from typing import Any

    from .conftest import shipped_model_variant

    def edit(doc: dict[str, Any]) -> None:
        force = doc["accounts"]["fit"]["force"]
        next(f for f in force if f["name"] == "account_competitor")["description"] = (
            "competitor [/] rival [bold]x"
        )

    model = shipped_model_variant(tmp_path, "2026.12-brackets", edit)
    code, lines = _run(
        demo_db, "explain", "--account", "rivalscore.io", "--model", str(model), columns="300"
    )
    assert code == 0
    assert "not an MQA (blocked: competitor [/] rival [bold]x; score 50 < 100;" in lines[0]
