"""`leadscore report`: how scored leads converted, MQL → SQL → customer, by grade, score band,
program and model version, from the state DB. A terminal table, and a self-contained HTML page
with inline SVG charts (no JavaScript, nothing fetched) for the review with sales.

How each number is counted (the page repeats this in its footnote):

- The funnel comes from each live contact's lifecycle stage as last pulled from the CRM (the
  CRM's own record): a contact *reached* a stage when its stage is that one or a later one
  (MQL ⊇ SQL ⊇ customer; evangelist counts as customer). A contact we made an MQL that sales
  later recycled to lead still counts as an MQL (`mql_at`). Unknown stages ("other") count as
  contacts only.
- A contact past MQL (SQL, opportunity, customer) counts in the funnel only if it went through
  MQL: we made it an MQL (`mql_at`), our model called it an MQL in its score history before
  sales made it an SQL, or the CRM dated its MQL stage (HubSpot's
  `hs_lifecyclestage_marketingqualifiedlead_date`, read from contacts pulled since this
  version: a backfill re-reads the older ones; on Marketo, the time its status field was
  set to a value read as MQL, from the lead changes incremental syncs read since this version).
  Otherwise sales created it as an SQL themselves: it is counted apart as *sales-sourced*,
  so it inflates neither the MQLs nor MQL → SQL.
- Grade, score band and model version are those **at hand-off**: the first `score_history`
  row in which the model said MQL; for a contact that never qualified, its current stored
  score. So a model change does not rewrite how past MQLs are attributed.
- Priority matrix: grade × engagement band at hand-off, the band of the hand-off score by the
  priority bands of the model in force (the default bands before any rollout); each cell's
  contacts and MQL → SQL rate (a heat map in the HTML page).
- Program: the first form or webinar in the contact's stored events ("form: Contact Us",
  "webinar: …"), the program that captured them and the one teams tune; without one, the first
  e-mail campaign they opened or clicked ("e-mail campaign 2003"; e-mails reach everyone, so they
  come second); without that, HubSpot's original source (`hs_analytics_source`, when the
  contact has it) as "source: ORGANIC_SEARCH"; else "(no program)".
- `--since DATE` keeps the contacts created (CRM create date) on or after DATE.

No contact-level data and no settings appear in the report: only counts, rates, program names
and model versions.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from connector.crm.base import CRM_MQL_DATE
from connector.errors import ConnectorError, InputError
from connector.files import write_private
from connector.ops.common import pct
from connector.scoring.accounts import shown_text
from connector.scoring.engine import priority_bands, priority_label
from connector.state.codec import decode_mapping
from connector.state.store import StateStore
from connector.types import LIFECYCLE_ORDER, MQL, SQL, stage_rank

GRADES: tuple[str, ...] = ("A", "B", "C", "D")
UNSCORED = "unscored"
NO_PROGRAM = "(no program)"
# (label, lower bound inclusive, upper bound exclusive)
BANDS: tuple[tuple[str, float | None, float | None], ...] = (
    ("<25", None, 25.0),
    ("25–49", 25.0, 50.0),
    ("50–99", 50.0, 100.0),
    ("100+", 100.0, None),
)
PROGRAM_EVENTS: tuple[str, ...] = (
    "form_submit",
    "webinar_registered",
    "webinar_attended",
    "email_click",
    "email_open",
)
# HubSpot's own record of when a contact entered MQL (real portals and our sandbox stamp it)
MQL_DATE_PROPERTY = "hs_lifecyclestage_marketingqualifiedlead_date"
_MQL_RANK = stage_rank(MQL)
_SQL_RANK = stage_rank(SQL)
_CUSTOMER_RANK = stage_rank("customer")
_KNOWN = len(LIFECYCLE_ORDER)
HTML_PROGRAM_ROWS = 25
TERMINAL_PROGRAM_ROWS = 15
KEY_SHOWN = 96  # characters of a row's key (a program: CRM text) the terminal table shows


# ------------------------------------------------------------------------ data


@dataclass
class Funnel:
    """Contacts of one segment and how many reached MQL, SQL and customer."""

    key: str
    contacts: int = 0
    mqls: int = 0
    sqls: int = 0
    customers: int = 0
    sales_sourced: int = 0  # past MQL without going through it: outside the MQL funnel

    @property
    def mql_to_sql(self) -> float | None:
        return self.sqls / self.mqls if self.mqls else None

    @property
    def sql_to_customer(self) -> float | None:
        return self.customers / self.sqls if self.sqls else None

    @property
    def mql_to_customer(self) -> float | None:
        return self.customers / self.mqls if self.mqls else None

    @property
    def mql_rate(self) -> float | None:
        return self.mqls / self.contacts if self.contacts else None

    def add(self, mql: bool, sql: bool, customer: bool, sales_sourced: bool = False) -> None:
        self.contacts += 1
        self.mqls += mql
        self.sqls += sql
        self.customers += customer
        self.sales_sourced += sales_sourced


@dataclass
class Report:
    crm: str
    generated_at: datetime
    since: datetime | None
    total: Funnel
    by_grade: list[Funnel]
    by_band: list[Funnel]
    by_program: list[Funnel]
    by_model: list[Funnel]
    models_in_scores: list[tuple[str, int]] = field(default_factory=list)  # current scores
    unscored: int = 0
    # accounts on (issue 21): contacts by their account's current grade, and MQA accounts'
    # contacts vs the others; empty without account scores
    by_account_grade: list[Funnel] = field(default_factory=list)
    by_mqa: list[Funnel] = field(default_factory=list)

    # grade × engagement band at hand-off: the band names (highest first) and one Funnel per
    # cell keyed by its priority label ("A1"), grades A-D × bands in order
    priority_bands: list[str] = field(default_factory=list)
    priority_band_ranges: list[str] = field(default_factory=list)  # "100+", "50–<100", "<50"
    by_priority: list[Funnel] = field(default_factory=list)
    # `report --score NAME` of a named score (issue 23): the score tables (grade, band,
    # priority cell, model) are that score's current stored values (a named score keeps no
    # history), and its verdict against its threshold; None: the lifecycle score
    score_name: str | None = None
    by_qualified: list[Funnel] = field(default_factory=list)

    def priority_cell(self, grade: str, band: str) -> Funnel:
        return next(f for f in self.by_priority if f.key == grade + band)


def band_of(score: float) -> str:
    for label, lo, hi in BANDS:
        if (lo is None or score >= lo) and (hi is None or score < hi):
            return label
    return BANDS[-1][0]  # pragma: no cover - the bands cover every number


def _program_label(event_type: str, attrs: dict[str, Any]) -> str | None:
    if event_type == "form_submit":
        name = attrs.get("form")
        return f"form: {name}" if name else None
    if event_type.startswith("webinar_"):
        name = attrs.get("name")
        return f"webinar: {name}" if name else None
    campaign = attrs.get("campaign")
    if campaign in (None, ""):
        return None
    text = str(campaign)
    return f"e-mail campaign {text}" if text.isdigit() else f"e-mail: {text}"


def _first_programs(store: StateStore, crm: str) -> dict[str, str]:
    """contact id → its first program (see the module docstring), from the stored events: the
    first form or webinar, else the first e-mail campaign opened or clicked."""
    first: dict[str, str] = {}
    email: dict[str, str] = {}
    rows = store.db.execute(
        "SELECT contact_id, type, attributes FROM events "
        "WHERE crm = ? AND type IN (SELECT value FROM json_each(?)) "
        "ORDER BY contact_id, occurred_at, rowid",
        [crm, _json_list(PROGRAM_EVENTS)],
    )
    for cid, etype, attrs in rows:
        if cid in first:
            continue
        is_email = etype.startswith("email_")
        if is_email and cid in email:
            continue
        label = _program_label(etype, decode_mapping(attrs))
        if label is not None:
            (email if is_email else first)[cid] = label
    return {**email, **first}


def _json_list(items: Iterable[str]) -> str:
    return json.dumps(list(items))


def _handoff_scores(
    store: StateStore, crm: str
) -> tuple[dict[str, tuple[float, str, str]], set[str]]:
    """contact id → (score, grade, model version) at hand-off: the first history row with the
    MQL verdict from before the contact reached SQL, else the current stored score; and the
    contacts with such a row (a verdict given once sales owned the contact is no MQL)."""
    out: dict[str, tuple[float, str, str]] = {}
    for cid, sc, grade, version in store.db.execute(
        "SELECT contact_id, score, grade, model_version FROM scores WHERE crm = ?", [crm]
    ):
        out[cid] = (float(sc), str(grade), str(version))
    seen: set[str] = set()
    for cid, sc, grade, version, stage in store.db.execute(
        "SELECT contact_id, score, grade, model_version, stage FROM score_history "
        "WHERE crm = ? AND mql = 1 ORDER BY contact_id, scored_at, id",
        [crm],
    ):
        if cid not in seen and stage_rank(stage) < _SQL_RANK:  # rows from before: no stage
            seen.add(cid)
            out[cid] = (float(sc), str(grade), str(version))
    return out, seen


NO_ACCOUNT = "no account"
MQA_KEYS = ("MQA accounts", "other accounts", NO_ACCOUNT)


QUALIFIED_KEYS = ("qualified", "not qualified")


def _named_handoff(
    store: StateStore, crm: str, name: str
) -> tuple[dict[str, tuple[float, str, str]], set[str]]:
    """contact id → (score, grade, model version) of a named score, its current stored value
    (named scores keep no history), and the contacts qualified for it."""
    out: dict[str, tuple[float, str, str]] = {}
    qualified: set[str] = set()
    for s in store.iter_named_scores(crm, name):
        out[s.contact_id] = (s.score, s.grade, s.model_version)
        if s.qualified:
            qualified.add(s.contact_id)
    return out, qualified


def _contact_accounts(store: StateStore, crm: str) -> dict[str, tuple[str, bool]]:
    """contact id → (its account's grade, whether the account is an MQA), for the contacts
    whose account has a score."""
    rows = store.db.execute(
        "SELECT a.contact_id, s.grade, s.mqa FROM contact_accounts a JOIN account_scores s "
        "ON s.crm = a.crm AND s.account_id = a.account_id WHERE a.crm = ?",
        [crm],
    )
    return {str(cid): (str(grade), bool(mqa)) for cid, grade, mqa in rows}


def bands_in_force(
    store: StateStore, crm: str, score: str | None = None
) -> tuple[tuple[float, str], ...]:
    """The priority bands of the model in force (of its named score `score`, whose bands may
    be its own, as the sync labels it); the default bands before any rollout."""
    from connector.active_model import rebuild
    from connector.model.schema import ScoringModel

    active = store.get_active_model(crm)
    if active is None:
        return priority_bands(ScoringModel(version="default"))
    loaded = rebuild(active)
    named = loaded.named_score(score) if score is not None else None
    return priority_bands((named.loaded if named is not None else loaded).model)


def _band_ranges(bands: Sequence[tuple[float, str]]) -> list[str]:
    """Each band's scores for people: "100+", "50–<100", ..., the last "<50" (it takes every
    score below the band before it)."""
    out: list[str] = []
    for i, (low, _) in enumerate(bands):
        if i == 0:
            out.append(f"{low:g}+")
        elif i == len(bands) - 1:
            out.append(f"<{bands[i - 1][0]:g}")
        else:
            out.append(f"{low:g}–<{bands[i - 1][0]:g}")
    return out


def build_report(
    store: StateStore,
    crm: str,
    now: datetime,
    *,
    since: datetime | None = None,
    bands: Sequence[tuple[float, str]] | None = None,
    score: str | None = None,
) -> Report:
    """Conversion by grade, band, priority cell, program and model version (see the module
    docstring). `bands`: the priority bands (default: the model in force's). `score`: a named
    score's name: its values in the score tables, and conversion by its verdict (qualified
    or not); the conversion itself (MQL → SQL → customer) is the lifecycle's. Reads only."""
    bands = tuple(bands) if bands is not None else bands_in_force(store, crm, score)
    cells = {g + name: Funnel(g + name) for g in GRADES for _, name in bands}
    total = Funnel("all contacts")
    grades = {g: Funnel(g) for g in GRADES}
    bands_ = {b[0]: Funnel(b[0]) for b in BANDS}
    programs: dict[str, Funnel] = {}
    models: dict[str, Funnel] = {}
    unscored = Funnel(UNSCORED)
    handoff, model_mqls = _handoff_scores(store, crm)
    qualified: set[str] = set()
    verdicts = {k: Funnel(k) for k in QUALIFIED_KEYS}
    if score is not None:
        handoff, qualified = _named_handoff(store, crm, score)
    first_program = _first_programs(store, crm)
    account_of = _contact_accounts(store, crm)
    account_grades = {g: Funnel(g) for g in GRADES}
    account_grades[NO_ACCOUNT] = Funnel(NO_ACCOUNT)
    mqa = {k: Funnel(k) for k in MQA_KEYS}
    for contact in store.iter_contacts(crm):
        if since is not None and (contact.created_at is None or contact.created_at < since):
            continue
        rank = stage_rank(contact.lifecycle_stage)
        known = 0 <= rank < _KNOWN
        if known and rank > _MQL_RANK:  # past MQL: did it go through it?
            mql = (
                contact.mql_at is not None
                or contact.id in model_mqls
                or bool(contact.properties.get(MQL_DATE_PROPERTY))
                or bool(contact.properties.get(CRM_MQL_DATE))
            )
            flags = (mql, mql and rank >= _SQL_RANK, mql and rank >= _CUSTOMER_RANK, not mql)
        else:
            mql = (known and rank == _MQL_RANK) or contact.mql_at is not None
            flags = (mql, False, False, False)
        total.add(*flags)
        at = handoff.get(contact.id)
        if score is not None and at is not None:
            verdicts[QUALIFIED_KEYS[contact.id not in qualified]].add(*flags)
        if at is None:
            unscored.add(*flags)
        else:
            sc, grade, version = at
            grades.setdefault(grade, Funnel(grade)).add(*flags)
            bands_[band_of(sc)].add(*flags)
            cell = cells.get(priority_label(grade, sc, bands))
            if cell is not None:  # a grade outside A-D (never from the engine): no cell
                cell.add(*flags)
            models.setdefault(version, Funnel(version)).add(*flags)
        program = first_program.get(contact.id)
        if program is None:
            source = contact.properties.get("hs_analytics_source")
            program = f"source: {source}" if source else NO_PROGRAM
        programs.setdefault(program, Funnel(program)).add(*flags)
        acc = account_of.get(contact.id)
        if acc is None:
            account_grades[NO_ACCOUNT].add(*flags)
            mqa[NO_ACCOUNT].add(*flags)
        else:
            account_grades.setdefault(acc[0], Funnel(acc[0])).add(*flags)
            mqa[MQA_KEYS[0] if acc[1] else MQA_KEYS[1]].add(*flags)
    counted = Counter(v for _, _, v in handoff.values()) if score is not None else None
    in_scores = (
        sorted(((str(v), n) for v, n in counted.items()), key=lambda x: (-x[1], x[0]))
        if counted is not None
        else [
            (str(v), int(n))
            for v, n in store.db.execute(
                "SELECT model_version, count(*) FROM scores WHERE crm = ? "
                "GROUP BY model_version ORDER BY count(*) DESC, model_version",
                [crm],
            )
        ]
    )
    by_grade = list(grades.values())
    by_band = list(bands_.values())
    if unscored.contacts:
        by_grade.append(unscored)
        by_band.append(replace(unscored))
    return Report(
        crm=crm,
        generated_at=now,
        since=since,
        total=total,
        by_grade=by_grade,
        by_band=by_band,
        by_program=sorted(
            programs.values(), key=lambda f: (f.key == NO_PROGRAM, -f.mqls, -f.contacts, f.key)
        ),
        by_model=sorted(models.values(), key=lambda f: (-f.contacts, f.key)),
        models_in_scores=in_scores,
        unscored=unscored.contacts,
        by_account_grade=list(account_grades.values()) if account_of else [],
        by_mqa=list(mqa.values()) if account_of else [],
        priority_bands=[name for _, name in bands],
        priority_band_ranges=_band_ranges(bands),
        by_priority=list(cells.values()),
        score_name=score,
        by_qualified=list(verdicts.values()) if score is not None else [],
    )


# ------------------------------------------------------------------------ formatting


def _of(part: int, whole: int) -> str:
    return f"{part} of {whole}"


# ------------------------------------------------------------------------ terminal


def print_report(console: Console, r: Report) -> None:
    cohort = f"contacts created since {r.since:%Y-%m-%d}" if r.since else "all contacts"
    t = r.total
    console.print(
        f"[bold]Lead conversion[/bold] — {r.crm}, {cohort}, generated "
        f"{r.generated_at:%Y-%m-%d %H:%M} UTC"
    )
    if r.score_name is not None:
        console.print(
            f"score [bold]{r.score_name}[/bold]: grades, bands and priority are its current "
            "values; MQL, SQL and customer are the lifecycle's",
            highlight=False,
        )
    console.print(
        f"{t.contacts} contact(s) · {t.mqls} MQL · {t.sqls} SQL · {t.customers} customer(s) · "
        f"MQL→SQL {pct(t.mql_to_sql)} · SQL→customer {pct(t.sql_to_customer)} · "
        f"MQL→customer {pct(t.mql_to_customer)}"
        + (
            f" · {t.sales_sourced} sales-sourced SQL(s) (never MQL: outside the funnel)"
            if t.sales_sourced
            else ""
        )
    )
    models = ", ".join(f"{v} ({n})" for v, n in r.models_in_scores) or "no stored scores"
    console.print(f"model version in the stored scores: {models}")
    if r.by_qualified:
        title = f"By {r.score_name} verdict (its threshold)"
        console.print(_table(title, "verdict", r.by_qualified))
    console.print(_table("By grade at hand-off", "grade", r.by_grade))
    console.print(_table("By score band at hand-off", "band", r.by_band))
    console.print(_matrix(r))
    rows = r.by_program[:TERMINAL_PROGRAM_ROWS]
    title = "By program (first form or webinar, else e-mail campaign)"
    if len(r.by_program) > len(rows):
        title += f" — top {len(rows)} of {len(r.by_program)}"
    console.print(_table(title, "program", rows))
    console.print(_table("By model version at hand-off", "model", r.by_model))
    if r.by_account_grade:
        console.print(_table("By account grade (the account's current grade)", "account grade",
                             r.by_account_grade))  # fmt: skip
        console.print(_table("By MQA (the account's current verdict)", "account", r.by_mqa))


def _matrix(r: Report) -> Table:
    """Grade × engagement band at hand-off: contacts, and MQL → SQL (SQLs of MQLs) per cell."""
    table = Table(
        title="Priority at hand-off (grade × engagement band)",
        title_justify="left",
        caption="cell: contacts · MQL→SQL (SQLs/MQLs)",
        caption_justify="left",
    )
    table.add_column("grade")
    for band, scores in zip(r.priority_bands, r.priority_band_ranges, strict=True):
        table.add_column(f"band {band} ({scores})", justify="right")
    for grade in GRADES:
        cells = [r.priority_cell(grade, band) for band in r.priority_bands]
        table.add_row(
            grade,
            *(_cell_text(f) for f in cells),
        )
    return table


def _cell_text(f: Funnel) -> str:
    if not f.contacts:
        return "—"
    if not f.mqls:
        return f"{f.contacts} · no MQL"
    return f"{f.contacts} · {pct(f.mql_to_sql)} ({f.sqls}/{f.mqls})"


def _table(title: str, key: str, rows: Sequence[Funnel]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(key, overflow="fold", max_width=48)
    for col in (
        "contacts",
        "MQL",
        "SQL",
        "customers",
        "sales-sourced",
        "MQL→SQL",
        "SQL→cust.",
        "MQL→cust.",
    ):
        table.add_column(col, justify="right")
    for f in rows:
        table.add_row(
            # a program is CRM text (a form, webinar or campaign name, a source): as reasons
            # show names, no control characters and at most two lines of the column
            Text(shown_text(f.key, KEY_SHOWN)),
            str(f.contacts),
            str(f.mqls),
            str(f.sqls),
            str(f.customers),
            str(f.sales_sourced),
            pct(f.mql_to_sql),
            pct(f.sql_to_customer),
            pct(f.mql_to_customer),
        )
    return table


# ------------------------------------------------------------------------ HTML

CRM_NAMES = {"hubspot": "HubSpot", "marketo": "Marketo"}
BLUE = "#2563eb"
GREEN = "#16a34a"

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: #1f2937;
  font: 15px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 28px 32px 40px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: #4b5563; }
.cards { display: grid; grid-template-columns: repeat(6, 1fr); gap: 14px; margin: 22px 0; }
.card { background: #fff; border-radius: 10px; padding: 14px 16px;
  box-shadow: 0 1px 2px rgba(0,0,0,.06); }
.card .n { font-size: 28px; font-weight: 700; }
.card .l { color: #4b5563; font-size: 13px; }
.card .s { color: #6b7280; font-size: 12px; }
.grid2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 18px; }
section { background: #fff; border-radius: 10px; padding: 16px 18px; margin-bottom: 18px;
  box-shadow: 0 1px 2px rgba(0,0,0,.06); min-width: 0; overflow-x: auto; }
section h2 { margin: 0 0 10px; font-size: 17px; }
svg.chart { max-width: 100%; height: auto; display: block; }
svg text { font-family: inherit; fill: #374151; }
svg .tick, svg .note { font-size: 11px; fill: #6b7280; }
svg .group { font-size: 13px; font-weight: 600; }
svg .value { font-size: 12px; font-weight: 600; }
svg .legend { font-size: 12px; }
svg .grid { stroke: #e5e7eb; stroke-width: 1; }
svg .axis { stroke: #9ca3af; stroke-width: 1; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 10px; }
th, td { padding: 5px 8px; border-bottom: 1px solid #eef0f3; text-align: right;
  white-space: nowrap; }
th { color: #4b5563; font-weight: 600; background: #fafbfc; white-space: normal;
  vertical-align: bottom; }
.grid2 table { font-size: 12px; }
.grid2 th, .grid2 td { padding: 4px 5px; }
th:first-child, td:first-child { text-align: left; white-space: normal; }
td.rate { font-weight: 600; }
table.heat { width: auto; border-collapse: separate; border-spacing: 4px; }
table.heat th { background: none; text-align: center; border: 0; padding: 4px 8px; }
table.heat th.g { text-align: right; font-size: 15px; vertical-align: middle; }
table.heat td { width: 150px; height: 64px; text-align: center; border: 0; border-radius: 6px;
  padding: 6px 8px; vertical-align: middle; }
table.heat td .r { font-size: 18px; font-weight: 700; display: block; }
table.heat td .c { font-size: 11px; display: block; opacity: .85; }
table.heat td.none { background: #f3f4f6; color: #9ca3af; }
.heat-note { color: #6b7280; font-size: 12px; margin: 6px 0 0; }
footer { color: #6b7280; font-size: 12px; margin-top: 8px; }
footer ul { padding-left: 18px; margin: 6px 0; }
@media print { body { background: #fff; } section, .card { box-shadow: none;
  border: 1px solid #e5e7eb; } }
"""


def render_html(report: Report, extra_sections: Sequence[str] = ()) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG; no script, no URL).

    `extra_sections`: pre-rendered HTML fragments (e.g. a `<section>` from the calibration),
    inserted as they are after the built-in sections; the caller escapes their data."""
    from connector.ops.svg import Bar, Group, funnel, grouped_bars

    r, t = report, report.total
    cohort = f"contacts created since {r.since:%Y-%m-%d}" if r.since is not None else "all contacts"
    models = ", ".join(f"{v} ({n:,} contacts)" for v, n in r.models_in_scores) or "no scores"
    generated = f"{r.generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"

    def card(n: str, label: str, sub: str = "") -> str:
        return (
            f'<div class="card"><div class="n">{escape(n)}</div><div class="l">{escape(label)}'
            f'</div><div class="s">{escape(sub)}</div></div>'
        )

    cards = "".join(
        [
            card(f"{t.contacts:,}", "contacts", cohort),
            card(f"{t.mqls:,}", "MQLs", f"{pct(t.mql_rate)} of contacts"),
            card(pct(t.mql_to_sql), "MQL → SQL", f"{_of(t.sqls, t.mqls)} MQLs"),
            card(pct(t.sql_to_customer), "SQL → customer", f"{_of(t.customers, t.sqls)} SQLs"),
            card(pct(t.mql_to_customer), "MQL → customer", f"{_of(t.customers, t.mqls)} MQLs"),
            card(f"{t.sales_sourced:,}", "sales-sourced", "SQLs that were never MQLs"),
        ]
    )
    steps = [
        ("Contacts", t.contacts, ""),
        ("MQL", t.mqls, f"  ·  {pct(t.mql_rate)} of contacts"),
        ("SQL", t.sqls, f"  ·  {pct(t.mql_to_sql)} of MQLs"),
        ("Customer", t.customers, f"  ·  {pct(t.sql_to_customer)} of SQLs"),
    ]
    series = (("MQL → SQL", BLUE), ("MQL → customer", GREEN))

    def groups(rows: Sequence[Funnel]) -> list[Group]:
        return [
            Group(
                f.key,
                f"{f.mqls:,} MQL{'s' if f.mqls != 1 else ''}",
                (
                    Bar(
                        f.mql_to_sql, pct(f.mql_to_sql), f"{f.key}: MQL → SQL {f.sqls} of {f.mqls}"
                    ),
                    Bar(
                        f.mql_to_customer,
                        pct(f.mql_to_customer),
                        f"{f.key}: MQL → customer {f.customers} of {f.mqls}",
                    ),
                ),
            )
            for f in rows
        ]

    grade_chart = grouped_bars(groups(r.by_grade), series, title="Conversion by grade")
    band_chart = grouped_bars(groups(r.by_band), series, title="Conversion by score band")
    programs = r.by_program[:HTML_PROGRAM_ROWS]
    more = len(r.by_program) - len(programs)
    program_note = f" — top {len(programs)} of {len(r.by_program)} by MQLs" if more else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Lead conversion — {escape(r.crm)} — {escape(generated)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<header><h1>Lead conversion: MQL → SQL → customer</h1>",
        f"<p>{escape(CRM_NAMES.get(r.crm, r.crm))} · {escape(cohort)} · scoring model "
        f"<strong>{escape(models)}</strong> · generated {escape(generated)}"
        + (
            f" · score <strong>{escape(r.score_name)}</strong> (grades, bands and priority are "
            "its current values; the stages are the lifecycle's)"
            if r.score_name
            else ""
        )
        + "</p></header>",
        f'<div class="cards">{cards}</div>',
        '<section class="funnel"><h2>Funnel</h2>',
        funnel(steps, colour=BLUE, width=760),
        "</section>",
        '<div class="grid2">',
        '<section id="by-grade"><h2>Conversion by grade at hand-off</h2>',
        grade_chart,
        _html_table("grade", r.by_grade),
        "</section>",
        '<section id="by-band"><h2>Conversion by score band at hand-off</h2>',
        band_chart,
        _html_table("score band", r.by_band),
        "</section></div>",
        *(
            [
                f'<section id="by-verdict"><h2>Conversion by {escape(r.score_name or "")} '
                "verdict (its threshold)</h2>",
                _html_table("verdict", r.by_qualified),
                "</section>",
            ]
            if r.by_qualified
            else []
        ),
        '<section id="priority"><h2>Priority at hand-off: grade × engagement band</h2>',
        _heat_map(r),
        "</section>",
        f'<section id="by-program"><h2>By program{escape(program_note)}</h2>',
        _html_table("program", programs),
        "</section>",
        '<section id="by-model"><h2>By model version at hand-off</h2>',
        _html_table("model version", r.by_model),
        "</section>",
        *_account_sections(r, groups, series),
        *extra_sections,
        "<footer><strong>How these numbers are counted.</strong><ul>",
        "<li>Stages are the CRM's lifecycle record as last synced; a contact reached a stage "
        "when it is at that stage or a later one (customer includes evangelist). MQLs recycled "
        "to lead by sales still count as MQLs.</li>",
        "<li>Contacts past MQL count only if they went through it (made MQL by leadscore, "
        "called MQL by the model before sales took them, or dated as MQL by the CRM); the "
        "others were created as SQLs by sales and are shown apart as sales-sourced, outside "
        "every conversion rate.</li>",
        "<li>Grade, score band and model version are those at hand-off: the score with which "
        "the contact first qualified as MQL, or the current score for contacts that never "
        "did.</li>",
        "<li>Account grade and MQA (with account-based scoring on) are the contact's "
        "account's current ones; contacts with no scored account are counted apart.</li>",
        "<li>Priority: the grade and the engagement band of the score at hand-off, by the "
        "bands of the model in force; a cell's colour is its MQL → SQL rate (grey: no MQLs)."
        "</li>",
        "<li>Program: the first form or webinar in the contact's activity; without one, the "
        "first e-mail campaign opened or clicked; without that, the CRM's original source."
        "</li>",
        f"<li>Generated by leadscore at {escape(generated)} from the state DB.</li>",
        "</ul></footer></main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _account_sections(r: Report, groups: Any, series: Any) -> list[str]:
    """Conversion by account grade and by MQA, side by side (accounts on only)."""
    from connector.ops.svg import grouped_bars

    if not r.by_account_grade:
        return []
    return [
        '<div class="grid2">',
        '<section id="by-account-grade"><h2>Conversion by account grade</h2>',
        grouped_bars(groups(r.by_account_grade), series, title="Conversion by account grade"),
        _html_table("account grade", r.by_account_grade),
        "</section>",
        '<section id="by-mqa"><h2>Conversion at MQA accounts</h2>',
        grouped_bars(groups(r.by_mqa), series, title="Conversion at MQA accounts"),
        _html_table("account", r.by_mqa),
        "</section></div>",
    ]


def _heat_map(r: Report) -> str:
    """The grade × band matrix as a table whose cells are shaded by their MQL → SQL rate."""
    head = (
        "<tr><th></th>"
        + "".join(
            f"<th>band {escape(b)}<br><small>score {escape(s)}</small></th>"
            for b, s in zip(r.priority_bands, r.priority_band_ranges, strict=True)
        )
        + "</tr>"
    )
    rows = []
    for grade in GRADES:
        tds = []
        for band in r.priority_bands:
            f = r.priority_cell(grade, band)
            rate = f.mql_to_sql
            contacts = f"{f.contacts:,} contact{'s' if f.contacts != 1 else ''}"
            counts = (
                f"{contacts} · {f.sqls:,} of {f.mqls:,} MQLs" if f.mqls else f"{contacts} · no MQLs"
            )
            title = escape(f"{f.key}: {counts}, MQL → SQL {pct(rate)}")
            if rate is None:
                tds.append(
                    f'<td class="none" title="{title}"><span class="r">{escape(f.key)}</span>'
                    f'<span class="c">{escape(counts)}</span></td>'
                )
                continue
            alpha = 0.12 + 0.83 * rate
            ink = "#fff" if alpha > 0.55 else "#1f2937"
            tds.append(
                f'<td style="background: rgba(37, 99, 235, {alpha:.2f}); color: {ink}" '
                f'title="{title}"><span class="r">{escape(f.key)} · {pct(rate)}</span>'
                f'<span class="c">{escape(counts)}</span></td>'
            )
        rows.append(f'<tr><th class="g">{grade}</th>{"".join(tds)}</tr>')
    bands = ", ".join(escape(b) for b in r.priority_bands)
    return (
        f'<table class="heat"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'
        f'<p class="heat-note">Rows: grade (profile fit). Columns: engagement band ({bands}, '
        "hottest first). Each cell: its priority label and MQL → SQL rate, contacts, SQLs of "
        "MQLs; darker blue converts better, grey has no MQLs.</p>"
    )


def _html_table(key: str, rows: Sequence[Funnel]) -> str:
    head = (
        f"<tr><th>{escape(key)}</th><th>contacts</th><th>MQL</th><th>SQL</th><th>customers</th>"
        "<th>sales-sourced</th><th>MQL → SQL</th><th>SQL → customer</th><th>MQL → customer</th>"
        "</tr>"
    )
    body = "".join(
        f"<tr><td>{escape(f.key)}</td><td>{f.contacts:,}</td><td>{f.mqls:,}</td>"
        f"<td>{f.sqls:,}</td><td>{f.customers:,}</td><td>{f.sales_sourced:,}</td>"
        f"<td class='rate'>{pct(f.mql_to_sql)}</td>"
        f"<td class='rate'>{pct(f.sql_to_customer)}</td>"
        f"<td class='rate'>{pct(f.mql_to_customer)}</td></tr>"
        for f in rows
    )
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


# ------------------------------------------------------------------------ CLI


def parse_since(text: str) -> datetime:
    from connector.parse import parse_timestamp

    try:
        return parse_timestamp(text, "--since")
    except InputError as exc:
        raise click.BadParameter(str(exc).removeprefix("--since: "), param_hint="--since") from None


@click.command("report")
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False), help="Also write an HTML page."
)
@click.option("--since", "since_text", help="Only contacts created on or after this date.")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON document.")
@click.option(
    "--score",
    "score_name",
    metavar="NAME",
    help="The score tables of this score of a model with several [default: the lifecycle one].",
)
@click.pass_context
def report_cmd(
    ctx: click.Context,
    html_path: str | None,
    since_text: str | None,
    as_json: bool,
    score_name: str | None,
) -> None:
    """Conversion MQL → SQL → customer by grade, score band, program and model version."""
    from connector.active_model import in_force_or
    from connector.ops.analysis import check_score_name
    from connector.ops.common import (
        console,
        fail,
        load_model_or_exit,
        open_existing_store,
        settings_from,
    )

    since = parse_since(since_text) if since_text else None
    settings = settings_from(ctx)
    store = open_existing_store(settings)
    try:
        named: str | None = None
        if score_name is not None:  # the model in force says which scores there are
            model = in_force_or(store, settings.crm, load_model_or_exit(str(settings.model_path)))
            check_score_name(model, score_name)
            named = score_name if model.named_score(score_name) is not None else None
        report = build_report(store, settings.crm, datetime.now(UTC), since=since, score=named)
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)
    finally:
        store.close()
    if as_json:
        from connector.jsonout import emit, jsonable

        doc = jsonable(report, skip=("models_in_scores",))
        doc["models_in_scores"] = [
            {"version": v, "contacts": n} for v, n in report.models_in_scores
        ]
        emit(doc)
    else:
        print_report(console(), report)
    if html_path:
        target = Path(html_path)
        try:
            write_private(target, render_html(report))
        except OSError as exc:
            fail(f"cannot write {target}: {exc.strerror}")
        click.echo(f"wrote {target}", err=as_json)
    if report.total.contacts == 0:
        click.echo("note: no contacts match; run `leadscore sync` first", err=True)
    sys.exit(0)
