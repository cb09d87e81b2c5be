"""The calibration result for people: rich tables in the terminal, an HTML fragment for reports.

`render_calibration_html(result)` returns a self-contained fragment (inline CSS and SVG, no
script, no network) that `leadscore report`'s `render_html(..., extra_sections=[...])` can embed;
`render_calibration_page(result)` wraps it in a standalone page.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from rich.console import Console
from rich.table import Table

from connector.calibrate.accounts_refit import KEPT
from connector.calibrate.caps import CapChange
from connector.calibrate.core import CalibrationResult, Comparison, Suggestion
from connector.calibrate.fit import Band, ModelMetrics, PointChange
from connector.calibrate.priority_refit import MIN_CONTACTS, SHARES
from connector.calibrate.stats import RuleLift, ci_text, num, pct, ranked, wilson
from connector.console import fit_table
from connector.scoring.accounts import NAME_SHOWN, shown_text

BAND_NAMES = (
    "below 0",
    "0 to ½ threshold",
    "½ threshold to threshold",
    "threshold to 2×",
    "2× threshold and up",
)
NEXT_STEPS = (
    "Nothing was applied. Review the suggested file, check it with `leadscore validate-model "
    "{out}`, preview it with `leadscore simulate --model {out}` and `leadscore rescore "
    "--dry-run --model {out}`, and only then apply it with `leadscore rescore --model {out}`."
)


def next_steps(r: CalibrationResult, out_path: str | None) -> str:
    text = NEXT_STEPS.format(out=out_path or "FILE")
    if r.named:
        text = text.replace("simulate --model", f"simulate --score {r.score} --model")
    return text


def _pts(p: int | None, grade: str | None = None) -> str:
    if p is None:
        return f"grade {grade}" if grade else "–"
    return f"{p:+d}" if p else "0"


def _bar(r: CalibrationResult) -> str:
    """What the threshold is called: a named score's qualifies a contact for it."""
    return f"Threshold of {r.score}" if r.named else "MQL threshold"


def summary_lines(r: CalibrationResult) -> list[str]:
    c = r.counts
    days = r.options.horizon / timedelta(days=1)
    lines = [
        f"Model {r.model_version} ({r.model_fingerprint}), outcomes as of {r.as_of:%Y-%m-%d}, "
        f"horizon {days:g} days after the first scored engagement.",
        *(
            [
                f"Score {r.score}: a named score, replayed with its own rules, window and "
                "threshold; the outcomes are the lifecycle score's (SQL signals and statuses), "
                f"the first scored engagement is the first event of a type its rules score."
            ]
            if r.named
            else []
        ),
        f"{c.contacts:,} contact(s): {c.labelled:,} with a known outcome, {c.converted:,} "
        f"converted ({pct(c.converted / c.labelled if c.labelled else None)}), "
        f"{c.not_converted:,} did not.",
        f"Left out: {c.inside_horizon:,} still inside their horizon, {c.converted_before:,} "
        f"converted before engaging, {c.no_engagement:,} never engaged, {c.undated:,} "
        "reached SQL at an unknown time.",
    ]
    if c.signals:
        seen = ", ".join(f"{k} {v:,}" for k, v in sorted(c.signals.items(), key=lambda kv: -kv[1]))
        lines.append(f"Conversions seen as: {seen}.")
    return lines


def flag_lines(r: CalibrationResult) -> list[str]:
    out: list[str] = []
    wrong = r.wrong_way
    if wrong:
        out.append(
            "Points the wrong way: "
            + "; ".join(
                f"{x.name} ({_pts(x.points, x.grade)}, lift {ci_text(x.lift, False)})"
                for x in wrong
            )
        )
    never = r.never_fire
    if never:
        out.append(
            f"Never fired on a contact with a known outcome ({len(never)}): "
            + ", ".join(x.name for x in never)
        )
    return out


def cap_lines(caps: Sequence[CapChange]) -> list[str]:
    """What changed in the caps, which move with the points so they keep their meaning."""
    if not caps:
        return []
    return [
        "Caps refit with the points (same meaning at the new scale): "
        + "; ".join(f"{c.kind} {c.name} {c.current} → {c.suggested} ({c.meaning})" for c in caps)
    ]


def grade_lines(s: Suggestion) -> list[str]:
    g = s.grades
    if g is None:
        return []
    p, n = g.score_points, g.contacts
    return [
        f"Profile refit with the same outcomes: grade A from {g.grades['A']} fit points, B from "
        f"{g.grades['B']}, C from {g.grades['C']}; each grade now adds its points to the score "
        + ", ".join(f"{k} {p[k]:+d} ({n[k]:,} training contacts)" for k in ("A", "B", "C", "D"))
        + "; forced grades (student, competitor, ...) stay forced; grades that may become MQLs "
        + "by points: "
        + ", ".join(s.model.model.lifecycle.mql.grades)
        + "."
    ]


NAMES_SHOWN = 5  # accounts named in a list before "…and N more"


def _names(labels: Sequence[str]) -> str:
    """Accounts by name as the CRM holds them (`shown_text`: no control characters, at most
    `NAME_SHOWN` characters each), then "…and N more"."""
    more = len(labels) - NAMES_SHOWN
    shown = [shown_text(label, NAME_SHOWN) for label in labels[:NAMES_SHOWN]]
    return ", ".join(shown) + (f", …and {more} more" if more > 0 else "")


def account_refit_lines(r: CalibrationResult) -> list[str]:
    """What the suggestion did to the accounts section (accounts_refit.py): every number
    changed, old → new, and the MQAs now and with the suggested model on the same data."""
    s = r.suggestion
    a = s.accounts if s is not None else None
    if s is None or a is None:
        return []
    changed = "; ".join(f"{n.label} {num(n.current)} → {num(n.suggested)}" for n in a.numbers)
    out = [
        f"Accounts section refit to the suggested contact points (scale ×{num(a.scale)}, the "
        f"MQL threshold's {num(s.current_threshold)} → {num(s.threshold)}): "
        + (changed or "no number changes")
        + "."
    ]
    if a.method == KEPT:
        moved = [
            *([f"would become MQAs: {_names(a.gained)}"] if a.gained else []),
            *([f"would stop being MQAs: {_names(a.lost)}"] if a.lost else []),
        ]
        out.append(
            f"MQA threshold {num(a.mqa_threshold)} → {num(a.suggested_mqa_threshold)}, chosen "
            f"on the stored data to keep the current MQAs: of {a.accounts:,} account(s), "
            f"{a.current_mqas:,} MQA(s) with the current model, {a.suggested_mqas:,} with the "
            f"suggested one ({a.kept_mqas:,} kept"
            + ("; " + "; ".join(moved) if moved else "")
            + ")."
        )
    else:
        out.append(
            "MQA threshold scaled with the contact points: no account data to keep the current "
            "MQAs with (account scoring off, or no account with a live member)."
        )
    if r.accounts is not None and r.accounts.suggested is not None:
        out.append(
            f"The MQA threshold the account outcomes suggest below "
            f"({num(r.accounts.suggested.threshold)}) is on the current model's points."
        )
    return out


def priority_refit_lines(s: Suggestion, score: str | None = None) -> list[str]:
    """What the suggestion did to the priority bands (priority_refit.py): every band's minimum,
    old → new, and its contacts now and with the suggested model on the same data. `score`:
    the named score whose own bands they are."""
    p = s.priority
    if p is None:
        return []
    verb = "refit" if p.changed else "kept"
    whose = f"Priority bands of score {score}" if score else "Priority bands"
    bands = "; ".join(f"{b.name} {num(b.current)} → {num(b.suggested)} ({b.how})" for b in p.bands)
    if p.method != SHARES:
        return [
            f"{whose} {verb}, scaled with the contact points (×{num(p.scale)}, the MQL "
            f"threshold's {num(s.current_threshold)} → {num(s.threshold)}): {p.contacts:,} "
            f"stored contact(s) scored, too few (under {MIN_CONTACTS}) to keep each band's "
            f"share of: {bands}."
        ]

    def counts(values: Sequence[int | None]) -> str:
        return ", ".join(f"{n:,}" for n in values if n is not None)

    moved = "; ".join(
        f"{b.name}: {b.contacts_now:,} → {b.contacts_suggested:,}"
        for b in p.bands
        if b.contacts_now is not None and b.contacts_suggested is not None
    )
    return [
        f"{whose} {verb} to the suggested contact points, on {p.contacts:,} stored "
        "contacts scored with both models (each band keeps its share of them; a band at the MQL "
        f"threshold follows it; the last band's minimum is scaled): {bands}.",
        f"Contacts per band, now → with the suggestion: {moved} (with the bands left as they "
        f"were: {counts([b.contacts_unrefit for b in p.bands])}).",
    ]


CANDIDATE_COLUMNS = (
    "candidate",
    "contacts (train)",
    "converted with",
    "converted without",
    "lift (95%)",
    "strong",
    "points",
    "in the suggested model",
)


def candidate_rows(s: Suggestion) -> list[list[str]]:
    rows: list[list[str]] = []
    for c in s.candidates:
        rows.append(
            [
                c.key,
                f"{c.fired:,}",
                pct(c.fired_converted / c.fired if c.fired else None),
                pct(c.not_fired_converted / c.not_fired if c.not_fired else None),
                ci_text(c.lift, False),
                "yes" if c.strong else "no",
                "–" if c.points is None else f"{c.points:+d}",
                f"NEW: {c.name}" if c.added else ("profile: propose to sales" if c.event is None
                                                  and c.strong else "no"),
            ]
        )  # fmt: skip
    return rows


def candidates_rich(s: Suggestion, limit: int = 15) -> Table | None:
    rows = candidate_rows(s)[:limit]
    if not rows:
        return None
    t = Table(
        title="Rules it would add: what no current rule counts, highest lift first "
        "(strong: the 99.9% interval excludes 1)"
    )
    for i, col in enumerate(CANDIDATE_COLUMNS):
        t.add_column(col, justify="left" if i in (0, 5, 7) else "right")
    for row in rows:
        t.add_row(*row, style="bold green" if row[-1].startswith("NEW") else "")
    return t


def mql_sql_line(c: Comparison) -> str:
    """What an MQL at the suggested threshold is worth: the held-out MQL → SQL rate."""
    parts = []
    for name, m in (("suggested", c.suggested), ("current", c.current)):
        hits = round(m.precision * m.mql)
        parts.append(
            f"{name} (threshold {num(m.threshold)}): {ci_text(wilson(hits, m.mql))} of "
            f"{m.mql:,} MQLs reached SQL"
        )
    return "Expected MQL → SQL rate on the held-out contacts (95% interval): " + "; ".join(parts)


def baseline_line(c: Comparison) -> str:
    if c.baseline_auc is None:
        return "Plain logistic regression on the same features: – (cannot be fitted)."
    return (
        f"Plain logistic regression on the same features and split (the bar a points table can "
        f"reach): ROC AUC {c.baseline_auc:.3f}; current {_auc(c.current)}, suggested "
        f"{_auc(c.suggested)}."
    )


def lift_rich(rows: Sequence[RuleLift]) -> Table:
    t = Table(title="Rules: conversion with and without (95% intervals), highest lift first")
    for col, justify in (
        ("rule (kind)", "left"),
        ("points", "right"),
        ("fired", "right"),
        ("converted with", "right"),
        ("converted without", "right"),
        ("lift", "right"),
        ("verdict", "left"),
    ):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for x in ranked(rows):
        if x.fired == 0:
            continue
        style = {"wrong way": "bold red", "helps": "green", "hurts": "yellow"}.get(x.verdict, "")
        t.add_row(
            f"{x.name} ({x.kind})",  # wraps before the kind in a narrow terminal
            _pts(x.points, x.grade),
            f"{x.fired:,} ({x.fired_share:.0%})",
            ci_text(x.rate_with),
            ci_text(x.rate_without),
            ci_text(x.lift, False),
            x.verdict,
            style=style,
        )
    return t


def _odds(c: PointChange) -> str:
    return "–" if c.odds_ratio is None else f"×{c.odds_ratio:.2f}"


def changes_rich(changes: Sequence[PointChange]) -> tuple[Table, list[str]]:
    """The suggested points as a table, and its footnotes: a note that several rules share
    (the profile's rules all kept, "≈ no effect" on many) is shown once under the table, each
    row marking it `[n]`, instead of wrapping into the same five lines on every row of a
    narrow terminal."""
    shown = [c for c in changes if c.status != "kept: never fires"]
    repeated = Counter(c.note for c in shown if c.note)
    marks: dict[str, str] = {}
    for c in shown:  # numbered in the order the rows show them
        if repeated[c.note] > 1 and c.note not in marks:
            marks[c.note] = f"[{len(marks) + 1}]"
    t = Table(title="Suggested points (odds × per unit: how each unit changes the odds)")
    t.add_column("rule", no_wrap=True)  # a rule's name whole (`fit_table` keeps it so)
    for col, justify in (
        ("current", "right"),
        ("suggested", "right"),
        ("odds × / unit", "right"),
        ("fired (train)", "right"),
        ("status", "left"),
        ("note", "left"),
    ):
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in shown:
        style = (
            "bold red"
            if c.status in ("sign flipped", "new sign")
            else ("yellow" if c.status == "sign kept" else "")
        )
        t.add_row(
            c.feature,
            f"{c.current:+d}",
            f"{c.suggested:+d}",
            _odds(c),
            f"{c.fires:,}",
            c.status,
            marks.get(c.note, c.note),
            style=style,
        )
    return t, [f"{mark} {note}" for note, mark in marks.items()]


def comparison_rich(
    cur: ModelMetrics, sug: ModelMetrics, n_train: int, bar: str = "MQL threshold"
) -> tuple[Table, Table]:
    t = Table(
        title=f"Held-out comparison: trained on {n_train:,} older contacts, "
        f"tested on the {cur.contacts:,} newest"
    )
    t.add_column("")
    t.add_column(f"current ({cur.version})", justify="right")
    t.add_column(f"suggested ({sug.version})", justify="right")
    for label, a, b in (
        (
            "contacts / converted",
            f"{cur.contacts:,} / {cur.converted:,}",
            f"{sug.contacts:,} / {sug.converted:,}",
        ),
        ("ROC AUC (peak score)", _auc(cur), _auc(sug)),
        (bar, num(cur.threshold), num(sug.threshold)),
        (
            "MQLs (rate)",
            f"{cur.mql:,} ({pct(cur.mql_rate)})",
            f"{sug.mql:,} ({pct(sug.mql_rate)})",
        ),
        ("precision at threshold", pct(cur.precision), pct(sug.precision)),
        ("recall at threshold", pct(cur.recall), pct(sug.recall)),
    ):
        t.add_row(label, a, b)
    bands = Table(title="Conversion by score band (held-out contacts, 95% intervals)")
    bands.add_column("band")
    for name in ("current", "suggested"):
        bands.add_column(f"{name}: scores", justify="right")
        bands.add_column(f"{name}: contacts", justify="right")
        bands.add_column(f"{name}: converted", justify="right")
    for i, band_name in enumerate(BAND_NAMES):
        cells = [band_name]
        for m in (cur, sug):
            band = m.bands[i]
            cells += [
                band.label,
                f"{band.contacts:,}",
                ci_text(wilson(band.converted, band.contacts)),
            ]
        bands.add_row(*cells)
    return t, bands


def _auc(m: ModelMetrics) -> str:
    return "–" if m.auc is None else f"{m.auc:.3f}"


def print_calibration(
    console: Console, r: CalibrationResult, *, out_path: str | None = None
) -> None:
    for line in summary_lines(r):
        console.print(line, highlight=False)
    console.print(fit_table(console, lift_rich(r.lift)))
    for line in flag_lines(r):
        console.print(line, highlight=False)
    if r.insufficient is not None:
        console.print(f"[bold]{r.insufficient}.[/bold] Nothing suggested.", highlight=False)
        _print_accounts(console, r)
        return
    s, cmp_ = r.suggestion, r.comparison
    assert s is not None and cmp_ is not None
    table, footnotes = changes_rich(s.changes)
    console.print(fit_table(console, table))
    for line in footnotes:
        console.print(line, highlight=False)
    for line in [*cap_lines(s.caps), *grade_lines(s)]:
        console.print(line, highlight=False)
    # plain text, company names among it as the CRM holds them ("Initech [/] …" is no markup)
    for line in [*account_refit_lines(r), *priority_refit_lines(s, r.score if r.named else None)]:
        console.print(line, highlight=False, markup=False)
    cands = candidates_rich(s)
    if cands is not None:
        console.print(fit_table(console, cands))
    kept = [c.feature for c in s.changes if c.status == "kept: never fires"]
    if kept:
        console.print(
            f"Never fired in training, points kept ({len(kept)}): " + ", ".join(kept),
            highlight=False,
        )
    console.print(
        f"{_bar(r)} {num(s.current_threshold)} → {num(s.threshold)}; MQL rate on the "
        f"training contacts: current {pct(s.train_mql_rate_current)} → suggested "
        f"{pct(s.train_mql_rate)} (target {pct(s.target_mql_rate)}).",
        highlight=False,
    )
    for c in s.sign_flips:
        applied = "APPLIED" if c.status == "sign flipped" else "not applied (--allow-sign-flips)"
        console.print(
            f"[bold red]Sign flip[/bold red] {c.feature}: {c.current:+d} → data says "
            f"{c.data_suggests:+d}; {applied}.",
            highlight=False,
        )
    t, b = comparison_rich(
        cmp_.current,
        cmp_.suggested,
        cmp_.train_contacts,
        "threshold" if r.named else "MQL threshold",
    )
    console.print(fit_table(console, t))
    console.print(baseline_line(cmp_), highlight=False)
    console.print(mql_sql_line(cmp_), highlight=False)
    console.print(fit_table(console, b))
    for note in r.notes:
        console.print(f"note: {note}", highlight=False)
    _print_accounts(console, r)
    if out_path:
        console.print(f"Wrote {out_path} (version {s.version}).", highlight=False)
    console.print(next_steps(r, out_path), highlight=False)


def _print_accounts(console: Console, r: CalibrationResult) -> None:
    if r.accounts is not None:
        from connector.calibrate.render_accounts import print_accounts

        print_accounts(console, r.accounts)


# ---------------------------------------------------------------------------- HTML

_CSS = """
.lsc{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1f2933;
  font-size:14px;line-height:1.45;max-width:1100px}
.lsc h2{font-size:20px;margin:18px 0 6px}.lsc h3{font-size:16px;margin:16px 0 6px}
.lsc h4{font-size:14px;margin:12px 0 4px}.lsc tr.good td{background:#e3f9e5}
.lsc table{border-collapse:collapse;margin:6px 0 12px}
.lsc th,.lsc td{border-bottom:1px solid #d9e2ec;padding:3px 8px;text-align:right;
  vertical-align:top}
.lsc th{background:#f0f4f8;font-weight:600}
.lsc td.l,.lsc th.l{text-align:left}
.lsc .bad{color:#b42318;font-weight:600}.lsc .good{color:#1a7f37}.lsc .warn{color:#9a6700}
.lsc .muted{color:#627d98}.lsc .box{background:#fff8e1;border-left:4px solid #f0b429;
  padding:6px 10px;margin:8px 0}
.lsc svg text{font-family:inherit;font-size:11px;fill:#334e68}
"""


def _e(v: object) -> str:
    return html.escape(str(v), quote=True)


def _table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    left: int = 1,
    classes: Sequence[str] | None = None,
    left_also: Sequence[int] = (),
) -> str:
    """A table of already-escaped cells; the first `left` columns (and `left_also`) are
    left-aligned, the rest (numbers) right-aligned."""
    lefts = set(range(left)) | set(left_also)
    th = "".join(
        f'<th class="l">{h}</th>' if i in lefts else f"<th>{h}</th>" for i, h in enumerate(head)
    )
    body = []
    for n, row in enumerate(rows):
        cls = f' class="{classes[n]}"' if classes and classes[n] else ""
        tds = "".join(
            f'<td class="l">{c}</td>' if i in lefts else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _forest_svg(rows: Sequence[RuleLift]) -> str:
    """Lift and its interval per rule on a log scale (0.1 to 10), 1 marked."""
    shown = [x for x in ranked(rows) if x.lift is not None]
    if not shown:
        return ""
    # the labels' column as wide as the longest name (11px text: about 6-7px a character), so
    # a long rule name (of ordinary letters) is not clipped at the picture's left edge
    label_w = max(200, 12 + 7 * max(len(x.name) for x in shown))
    w, row_h = label_w + 440, 18
    h = row_h * len(shown) + 30
    lo_v, hi_v = math.log(0.1), math.log(10.0)
    span = w - label_w - 20

    def x_of(v: float) -> float:
        v = min(max(v, 0.1), 10.0)
        return label_w + (math.log(v) - lo_v) / (hi_v - lo_v) * span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="lift by rule">'
    ]
    for tick in (0.1, 0.25, 0.5, 1, 2, 4, 10):
        x = x_of(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="8" x2="{x:.1f}" y2="{h - 18}" '
            f'stroke="{"#334e68" if tick == 1 else "#d9e2ec"}" stroke-width="1"/>'
        )
        parts.append(f'<text x="{x:.1f}" y="{h - 4}" text-anchor="middle">{tick:g}×</text>')
    colors = {"wrong way": "#b42318", "helps": "#1a7f37", "hurts": "#9a6700"}
    for i, row in enumerate(shown):
        li = row.lift
        assert li is not None
        y = 16 + i * row_h
        c = colors.get(row.verdict, "#627d98")
        parts.append(f'<text x="{label_w - 6}" y="{y + 4}" text-anchor="end">{_e(row.name)}</text>')
        parts.append(
            f'<line x1="{x_of(li.low):.1f}" y1="{y}" x2="{x_of(li.high):.1f}" '
            f'y2="{y}" stroke="{c}" stroke-width="2"/>'
        )
        parts.append(
            f'<circle cx="{x_of(li.value):.1f}" cy="{y}" r="4" fill="{c}">'
            f"<title>{_e(row.name)}: lift {_e(ci_text(li, False))}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _bands_svg(cur: ModelMetrics, sug: ModelMetrics) -> str:
    """Conversion rate by band, current and suggested side by side."""
    w, h, left, bottom = 640, 220, 40, 40
    n = len(BAND_NAMES)
    group = (w - left - 10) / n
    rates = [b.rate or 0.0 for m in (cur, sug) for b in m.bands]
    top = max([*rates, 0.05])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="conversion by score band">'
    ]
    for frac in (0.0, 0.5, 1.0):
        y = h - bottom - frac * (h - bottom - 20)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{w - 10}" y2="{y:.1f}" stroke="#d9e2ec"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{top * frac:.0%}</text>'
        )
    for i, name in enumerate(BAND_NAMES):
        gx = left + i * group
        for k, (m, color) in enumerate(((cur, "#9fb3c8"), (sug, "#2680c2"))):
            b = m.bands[i]
            bh = (b.rate or 0.0) / top * (h - bottom - 20)
            x = gx + 8 + k * (group / 2 - 6)
            bw = group / 2 - 10
            parts.append(
                f'<rect x="{x:.1f}" y="{h - bottom - bh:.1f}" width="{bw:.1f}" height="{bh:.1f}" '
                f'fill="{color}"><title>{"current" if k == 0 else "suggested"} {_e(b.label)}: '
                f"{b.converted}/{b.contacts} converted</title></rect>"
            )
        parts.append(
            f'<text x="{gx + group / 2:.1f}" y="{h - bottom + 14}" '
            f'text-anchor="middle">{_e(name)}</text>'
        )
    parts.append(
        f'<rect x="{left}" y="{h - 14}" width="10" height="10" fill="#9fb3c8"/>'
        f'<text x="{left + 14}" y="{h - 5}">current</text>'
        f'<rect x="{left + 80}" y="{h - 14}" width="10" height="10" fill="#2680c2"/>'
        f'<text x="{left + 94}" y="{h - 5}">suggested</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def render_calibration_html(result: CalibrationResult, out_path: str | None = None) -> str:
    """A self-contained HTML fragment (one <section>): no script, no external resource.
    `out_path`: where the suggested model was written, for the next-steps line."""
    r = result
    out = [
        f'<section class="lsc" id="leadscore-calibration"><style>{_CSS}</style>',
        "<h2>Calibration"
        + (f" of score {_e(r.score)}" if r.named else "")
        + ": how did the leads convert, and should the points change?</h2>",
    ]
    out += [f"<p>{_e(line)}</p>" for line in summary_lines(r)]
    out.append("<h3>Rules: conversion with and without, highest lift first</h3>")
    fired = [x for x in ranked(r.lift) if x.fired]
    verdict_cls = {"wrong way": "bad", "helps": "good", "hurts": "warn"}
    out.append(
        _table(
            [
                "rule",
                "kind",
                "points",
                "fired",
                "converted with",
                "converted without",
                "lift",
                "verdict",
            ],
            [
                [
                    _e(x.name),
                    _e(x.kind),
                    _e(_pts(x.points, x.grade)),
                    _e(f"{x.fired:,} ({x.fired_share:.0%})"),
                    _e(ci_text(x.rate_with)),
                    _e(ci_text(x.rate_without)),
                    _e(ci_text(x.lift, False)),
                    f'<span class="{verdict_cls.get(x.verdict, "muted")}">{_e(x.verdict)}</span>',
                ]
                for x in fired
            ],
            left=2,
        )
    )
    out.append(_forest_svg(r.lift))
    out += [f'<p class="box">{_e(line)}</p>' for line in flag_lines(r)]
    if r.insufficient is not None or r.suggestion is None or r.comparison is None:
        out.append(
            f'<p class="box"><b>{_e(r.insufficient or "no suggestion")}.</b> Nothing suggested.</p>'
        )
        out.append(_accounts_html(r) + "</section>")
        return "".join(out)
    s, c = r.suggestion, r.comparison
    out.append(f"<h3>Suggested model {_e(s.version)}</h3>")
    status_cls = {"sign flipped": "bad", "new sign": "bad", "sign kept": "warn"}
    shown = [x for x in s.changes if x.status != "kept: never fires"]
    out.append(
        _table(
            ["rule", "current", "suggested", "odds × / unit", "fired (train)", "status", "note"],
            [
                [
                    _e(x.feature),
                    _e(f"{x.current:+d}"),
                    f"<b>{_e(f'{x.suggested:+d}')}</b>",
                    _e(_odds(x)),
                    _e(f"{x.fires:,}"),
                    f'<span class="{status_cls.get(x.status, "")}">{_e(x.status)}</span>',
                    _e(x.note),
                ]
                for x in shown
            ],
            left_also=(5, 6),
        )
    )
    out += [
        f"<p>{_e(line)}</p>"
        for line in [
            *cap_lines(s.caps),
            *grade_lines(s),
            *account_refit_lines(r),
            *priority_refit_lines(s, r.score if r.named else None),
        ]
    ]
    rows = candidate_rows(s)[:15]
    if rows:
        out.append("<h3>Rules it would add (what no current rule counts)</h3>")
        out.append(
            _table(
                [_e(c) for c in CANDIDATE_COLUMNS],
                [[_e(x) for x in row] for row in rows],
                left_also=(5, 7),
            )
        )
    kept = [x.feature for x in s.changes if x.status == "kept: never fires"]
    if kept:
        out.append(
            f'<p class="muted">Never fired in training, points kept: {_e(", ".join(kept))}</p>'
        )
    out.append(
        f"<p>{_e(_bar(r))} {_e(num(s.current_threshold))} → <b>{_e(num(s.threshold))}</b>; "
        f"MQL rate on the training contacts: current {_e(pct(s.train_mql_rate_current))} → "
        f"suggested <b>{_e(pct(s.train_mql_rate))}</b> (target {_e(pct(s.target_mql_rate))}).</p>"
    )
    for x in s.sign_flips:
        applied = "applied" if x.status == "sign flipped" else "not applied"
        out.append(
            f'<p class="box"><span class="bad">Sign flip</span> {_e(x.feature)}: '
            f"{_e(f'{x.current:+d}')} → data says {_e(f'{x.data_suggests:+d}')} "
            f"({applied}).</p>"
        )
    out.append(
        f"<h3>Held-out comparison: trained on {c.train_contacts:,} older contacts, "
        f"tested on the {c.test_contacts:,} newest (first engaged from "
        f"{c.split_at:%Y-%m-%d})</h3>"
    )
    cur, sug = c.current, c.suggested

    def auc(m: ModelMetrics) -> str:
        return "–" if m.auc is None else f"{m.auc:.3f}"

    better = "good" if c.better else "bad"
    out.append(
        _table(
            ["", f"current ({_e(cur.version)})", f"suggested ({_e(sug.version)})"],
            [
                [
                    "contacts / converted",
                    _e(f"{cur.contacts:,} / {cur.converted:,}"),
                    _e(f"{sug.contacts:,} / {sug.converted:,}"),
                ],
                [
                    "ROC AUC (peak score)",
                    _e(auc(cur)),
                    f'<span class="{better}">{_e(auc(sug))}</span>',
                ],
                [
                    "threshold" if r.named else "MQL threshold",
                    _e(num(cur.threshold)),
                    _e(num(sug.threshold)),
                ],
                [
                    "MQLs (rate)",
                    _e(f"{cur.mql:,} ({pct(cur.mql_rate)})"),
                    _e(f"{sug.mql:,} ({pct(sug.mql_rate)})"),
                ],
                ["precision at threshold", _e(pct(cur.precision)), _e(pct(sug.precision))],
                ["recall at threshold", _e(pct(cur.recall)), _e(pct(sug.recall))],
            ],
        )
    )
    out.append(f"<p>{_e(baseline_line(c))}</p>")
    out.append(f"<p>{_e(mql_sql_line(c))}</p>")
    out.append("<h3>Conversion by score band (held-out contacts, 95% intervals)</h3>")
    out.append(
        _table(
            [
                "band",
                "current: scores",
                "contacts",
                "converted",
                "suggested: scores",
                "contacts",
                "converted",
            ],
            [
                [_e(name), *_band_cells(cur.bands[i]), *_band_cells(sug.bands[i])]
                for i, name in enumerate(BAND_NAMES)
            ],
        )
    )
    out.append(_bands_svg(cur, sug))
    out += [f'<p class="box">note: {_e(n)}</p>' for n in r.notes]
    out.append(_accounts_html(r))
    out.append(f"<p><b>{_e(next_steps(r, out_path))}</b></p></section>")
    return "".join(out)


def _accounts_html(r: CalibrationResult) -> str:
    if r.accounts is None:
        return ""
    from connector.calibrate.render_accounts import render_accounts_html

    return render_accounts_html(r.accounts)


def _band_cells(b: Band) -> list[str]:
    return [_e(b.label), _e(f"{b.contacts:,}"), _e(ci_text(wilson(b.converted, b.contacts)))]


def render_calibration_page(
    result: CalibrationResult, title: str = "leadscore calibration", out_path: str | None = None
) -> str:
    """A standalone page around the fragment (used when `leadscore report` is not available)."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title></head><body>"
        f"{render_calibration_html(result, out_path)}</body></html>\n"
    )
