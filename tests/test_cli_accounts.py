# ruff: noqa: E501  (the expected tables are 100-column lines, kept whole to compare exactly)
"""`leadscore accounts` and `leadscore explain --account` (issue 21) on the demo portal synced
with accounts on at NOW, through the CLI: exact tables at 100 columns, exact JSON, errors."""

from __future__ import annotations

import json
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
    "The 3 hottest of 12 scored account(s) (1 of them MQA)",
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
    assert doc["scored"] == 12
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
        ("RivalScore", "B", 50.0, False),
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
    "A, 4 people engaged); model 2026.11-default, scored 2026-11-01 12:00 UTC",
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
    "  2026-11-01 12:00  2026.11-default: score 174, grade A, MQA",
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
        {"grade": "A", "model_version": "2026.11-default", "mqa": True, "score": 375.0,
         "scored_at": "2026-11-01T12:00:00+00:00"}
    ]  # fmt: skip


def test_explain_account_errors_are_one_line_with_an_exit_code(demo_db: Path) -> None:
    res = CliRunner().invoke(cli, ["--state", str(demo_db), "explain", "--account", "nowhere.com"])
    assert res.exit_code == 1
    assert res.output == (
        f"error: no scored account 'nowhere.com' in {demo_db} (a domain, a CRM company id or "
        "an account id; `leadscore accounts` lists them)\n"
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
    assert json.loads(res.stdout) == {"accounts": [], "scored": 0}
