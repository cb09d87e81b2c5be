"""Job titles → seniority and department under the default title table (config/titles.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.model.loader import load_model
from connector.model.titles import TitleClassifier, validate_title_table
from connector.scoring import score
from connector.types import Company, Contact, Enrichment

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
MODEL = load_model()
ACME = Enrichment(
    "corporate",
    "acme-analytics.com",
    Company(
        domain="acme-analytics.com",
        name="Acme Analytics",
        industry="computer software",
        employee_count=850,
        annual_revenue_usd=120_000_000,
        country="US",
        source="local_csv",
        as_of="2026-10-01",
    ),
)
# at Acme every title earns the same 50 company points (size 20, industry 10, revenue 10,
# country 5, corporate e-mail 5); the rest is seniority (+30 decision maker, +15 manager) and
# department (+10 marketing, sales or revops)


@pytest.mark.parametrize(
    ("title", "seniority", "department", "rule", "fit"),
    [
        # issue 19: spelled-out titles classify like the abbreviated ones
        ("VP Marketing", "vp", "marketing", "vice_president", 90),
        ("Vice President, Marketing", "vp", "marketing", "vice_president", 90),
        ("Vice President of Marketing", "vp", "marketing", "vice_president", 90),
        ("Vice President, Sales", "vp", "sales", "vice_president", 90),
        ("Senior Vice President of Marketing", "vp", "marketing", "vice_president", 90),
        ("SVP Marketing", "vp", "marketing", "vice_president", 90),
        ("Executive Vice President of Sales", "vp", "sales", "vice_president", 90),
        ("Sr. Vice President, Sales", "vp", "sales", "vice_president", 90),
        (
            "Assistant Vice President, Marketing",
            "director",
            "marketing",
            "assistant_vice_president",
            90,
        ),
        ("Vice President", "vp", None, "vice_president", 80),
        # issue 19: titles in French, German, Spanish, Portuguese and Dutch
        ("Directeur Marketing", "director", "marketing", "director", 90),
        ("Directora de Marketing", "director", "marketing", "director", 90),
        ("Responsable Marketing", "manager", "marketing", "manager", 75),
        ("Geschäftsführer", "executive", "executive", "managing_director", 80),
        ("GESCHAEFTSFUEHRERIN", "executive", "executive", "managing_director", 80),
        ("Mitgründer & Vorstand", "executive", "executive", "managing_director", 80),
        ("Geschaftsfuhrerin", "executive", "executive", "managing_director", 80),
        ("Directeur Général", "executive", "executive", "managing_director", 80),
        ("Directeur Commercial", "director", "sales", "director", 90),
        ("Leiter Marketing", "director", "marketing", "head_of", 90),
        ("Vertriebsleiterin", "director", "sales", "head_of", 90),
        ("Teamleiter Vertrieb", "manager", "sales", "team_lead", 75),
        ("Gerente de Ventas", "manager", "sales", "manager", 75),
        ("Jefe de Mercadotecnia", "director", "marketing", "head_of", 90),
        ("Diretora de Vendas", "director", "sales", "director", 90),
        ("Vice-présidente Marketing", "vp", "marketing", "vice_president", 90),
        ("Vicepresidente de Ventas", "vp", "sales", "vice_president", 90),
        ("Hoofd Marketing", "director", "marketing", "head_of", 90),
        ("Marketingmanager", "manager", "marketing", "manager", 75),
        ("Verkoopmanager", "manager", "sales", "manager", 75),
        ("Stagiaire Marketing", "entry", "marketing", "intern", 40),
        # the traps stay right
        ("Account Executive", "individual", "sales", "account_executive", 60),
        ("Executive Assistant", "individual", "administration", "executive_assistant", 50),
        ("Chief of Staff", "manager", "administration", "chief_of_staff", 65),
        ("Managing Director", "executive", "executive", "managing_director", 80),
        ("AVP Marketing", "director", "marketing", "assistant_vice_president", 90),
        ("President", "executive", "executive", "founder_owner", 80),
        # "account" is a whole word: an accountant works in finance, not in sales
        ("Accountant", "individual", "finance", None, 50),
        ("Accounting Manager", "manager", "finance", "manager", 65),
        ("Account Manager", "manager", "sales", "manager", 75),
    ],
)
def test_titles_classify_alike_in_any_spelling_and_language(
    title: str, seniority: str, department: str | None, rule: str | None, fit: int
) -> None:
    info = MODEL.titles.classify(title)
    assert (info.seniority, info.department, info.rule) == (seniority, department, rule)
    contact = Contact("1", email="x@acme-analytics.com", job_title=title, country="US")
    assert score(contact, [], ACME, MODEL, NOW).fit_points == fit


def test_rewrites_and_accent_folding_come_from_the_table(tmp_path: Path) -> None:
    path = tmp_path / "titles.yaml"
    path.write_text(
        """
normalize:
  - {pattern: "\\\\bchef de la direction\\\\b", replace: "CEO"}
seniority:
  - {name: ceo, pattern: "\\\\bceo\\\\b", seniority: executive}
  - {name: directeur, pattern: "\\\\bdirecteur général\\\\b", seniority: executive}
department:
  - {name: ventes, pattern: "ventes", department: sales}
""",
        encoding="utf-8",
    )
    table, problems = validate_title_table(path)
    assert problems == []
    assert table is not None
    clf = TitleClassifier(table)
    ceo = clf.classify("Chef de la Direction")
    assert (ceo.seniority, ceo.rule) == ("executive", "ceo")
    # a pattern with accents matches the title with or without them, in any case
    for title in ("Directeur Général des Ventes", "DIRECTEUR GENERAL DES VENTES"):
        info = clf.classify(title)
        assert (info.seniority, info.rule, info.department) == ("executive", "directeur", "sales")


def test_a_broken_rewrite_is_a_title_table_error(tmp_path: Path) -> None:
    path = tmp_path / "titles.yaml"
    path.write_text(
        'normalize:\n  - {pattern: "(vice", replace: VP}\nseniority: []\n', encoding="utf-8"
    )
    table, problems = validate_title_table(path)
    assert table is None
    assert len(problems) == 1
    assert problems[0].startswith(
        "titles.yaml: line 2: normalize[0].pattern: invalid regular expression"
    )
