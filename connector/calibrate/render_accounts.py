"""The account coverage of a calibration (accounts.py) for people: terminal lines and tables,
and an HTML block for the calibration section. Layout only."""

from __future__ import annotations

import html
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from connector.calibrate.accounts import AccountCalibration, GroupRate, ThresholdRow
from connector.calibrate.stats import ci_text, fixed, num, pct
from connector.console import fit_table

LEFT_OUT = {
    "inside_horizon": "a member still inside its horizon",
    "undated": "a member reached SQL at an unknown time",
    "converted_before": "a member converted before engaging",
    "no engagement": "no member engaged",
}
MAX_THRESHOLDS = 12  # rows of the threshold table (around the current and suggested ones)


def rule_text(a: AccountCalibration) -> str:
    r = a.rule
    return f"score {num(r.threshold)}+, grade {', '.join(r.grades)}, {r.min_people}+ people engaged"


def summary_lines(a: AccountCalibration) -> list[str]:
    left = "; ".join(f"{n:,} with {LEFT_OUT.get(k, k)}" for k, n in sorted(a.left_out.items()))
    return [
        "Accounts: an account converted when any of its people (its contacts today) converted "
        "within the horizon; it is replayed day by day from its members' scores, as the sync "
        "rolls it up, up to its first conversion.",
        f"{a.accounts:,} account(s): {a.labelled:,} with a known outcome, {a.converted:,} "
        f"converted ({pct(a.converted / a.labelled if a.labelled else None)}), "
        f"{a.not_converted:,} did not" + (f"; left out: {left}" if left else "") + ".",
    ]


def lift_line(a: AccountCalibration) -> str:
    lift = ci_text(a.contact_lift, as_pct=False)
    return (
        "Lift of being at an MQA for a contact (converted at an MQA / at another account, "
        f"95% interval): {lift}."
    )


def threshold_lines(a: AccountCalibration) -> list[str]:
    if a.insufficient is not None:
        return [f"MQA threshold: {a.insufficient}. Nothing suggested."]
    s, c = a.suggested, a.current
    if s is None:
        return ["MQA threshold: no threshold separates the accounts. Nothing suggested."]
    out = [
        f"Suggested MQA threshold: {num(s.threshold)} (current {num(a.rule.threshold)}): "
        + _row_text(s)
    ]
    if c is not None and c.threshold != s.threshold:
        out.append(f"At the current threshold {num(c.threshold)}: " + _row_text(c))
    out.append(
        "Not applied: set `accounts.mqa.threshold` in the model and preview it with "
        "`leadscore simulate --mqa-threshold N`."
    )
    return out


def _row_text(r: ThresholdRow) -> str:
    return (
        f"{r.mqas:,} MQA(s), {ci_text(r.mqa_rate)} converted; the others {ci_text(r.other_rate)}; "
        f"{pct(r.recall)} of the converting accounts were MQAs, "
        f"{pct(r.false_rate)} of the others."
    )


GROUP_HEAD = ("converted", "rate (95%)")


def _group_cells(g: GroupRate) -> list[str]:
    return [f"{g.total:,}", f"{g.converted:,}", ci_text(g.rate)]


def _head(first: str) -> list[str]:
    """The columns of a group table: its key, how many (accounts or contacts), conversion."""
    return [first, "contacts" if first == "contact" else "accounts", *GROUP_HEAD]


def shown_thresholds(a: AccountCalibration) -> list[ThresholdRow]:
    """The threshold rows around the current and the suggested ones."""
    rows = list(a.thresholds)
    if len(rows) <= MAX_THRESHOLDS:
        return rows
    marks = [i for i, r in enumerate(rows) if r.threshold == a.rule.threshold or r is a.suggested]
    lo = max(0, min(marks) - 2)
    return rows[lo : lo + MAX_THRESHOLDS]


THRESHOLD_HEAD = (
    "MQA threshold",
    "MQAs",
    "converted",
    "MQA conversion (95%)",
    "others' conversion (95%)",
    "converters as MQA",
    "others as MQA",
    "separation",
    "",
)


def threshold_cells(a: AccountCalibration, r: ThresholdRow) -> list[str]:
    mark = []
    if r.threshold == a.rule.threshold:
        mark.append("current")
    if r is a.suggested:
        mark.append("suggested")
    return [
        num(r.threshold),
        f"{r.mqas:,}",
        f"{r.mqas_converted:,}",
        ci_text(r.mqa_rate),
        ci_text(r.other_rate),
        pct(r.recall),
        pct(r.false_rate),
        "–" if r.separation is None else fixed(r.separation),
        ", ".join(mark),
    ]


def print_accounts(console: Console, a: AccountCalibration) -> None:
    for line in summary_lines(a):
        console.print(line, highlight=False)
    for title, first, groups in _group_tables(a):
        t = Table(title=title, title_justify="left")
        for i, h in enumerate(_head(first)):
            t.add_column(h, justify="right" if i else "left")
        for g in groups:
            t.add_row(g.key, *_group_cells(g))
        console.print(fit_table(console, t))
    console.print(lift_line(a), highlight=False)
    rows = shown_thresholds(a)
    if rows and a.insufficient is None:
        t = Table(
            title="MQA thresholds on the accounts of an MQA grade with a known outcome "
            "(separation: converters as MQA − others as MQA)",
            title_justify="left",
        )
        for i, h in enumerate(THRESHOLD_HEAD):
            t.add_column(h, justify="left" if i == len(THRESHOLD_HEAD) - 1 else "right")
        for r in rows:
            t.add_row(*threshold_cells(a, r), style="bold" if r is a.suggested else "")
        console.print(fit_table(console, t))
    for line in threshold_lines(a):
        console.print(line, highlight=False)


def _group_tables(a: AccountCalibration) -> list[tuple[str, str, Sequence[GroupRate]]]:
    return [
        ("Account conversion by account grade (today's grade)", "account grade", a.by_grade),
        (
            f"Account conversion by MQA ({rule_text(a)}, on some day before the outcome)",
            "account",
            a.by_mqa,
        ),
        (
            "Contacts with a known outcome, by their account (an MQA during the contact's own "
            "observation)",
            "contact",
            a.contacts,
        ),
    ]


def _e(v: object) -> str:
    return html.escape(str(v), quote=True)


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str]) -> str:
    th = "".join(
        f'<th class="l">{_e(h)}</th>' if i == 0 else f"<th>{_e(h)}</th>" for i, h in enumerate(head)
    )
    body = []
    for row, cls in zip(rows, classes, strict=True):
        tds = "".join(
            f'<td class="l">{_e(c)}</td>' if i == 0 else f"<td>{_e(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _rates_svg(groups: Sequence[GroupRate], label: str) -> str:
    """Conversion rate per group with its 95% interval, as horizontal bars."""
    w, label_w, row_h = 560, 170, 22
    h = row_h * len(groups) + 26
    span = w - label_w - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="{_e(label)}">'
    ]
    for frac in (0.0, 0.5, 1.0):
        x = label_w + frac * span
        parts.append(
            f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{h - 18}" stroke="#d9e2ec"/>'
            f'<text x="{x:.1f}" y="{h - 4}" text-anchor="middle">{frac:.0%}</text>'
        )
    for i, g in enumerate(groups):
        y = 6 + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{_e(g.key)}</text>')
        if g.rate is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + 12}">no accounts</text>')
            continue
        bw = g.rate.value * span
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{bw:.1f}" height="12" fill="#2680c2">'
            f"<title>{_e(g.key)}: {g.converted}/{g.total} converted</title></rect>"
            f'<line x1="{label_w + g.rate.low * span:.1f}" y1="{y + 9}" '
            f'x2="{label_w + g.rate.high * span:.1f}" y2="{y + 9}" stroke="#102a43" '
            'stroke-width="1.5"/>'
            f'<text x="{label_w + span + 6}" y="{y + 12}">{g.converted}/{g.total}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_accounts_html(a: AccountCalibration) -> str:
    """The account coverage as an HTML block (inside the calibration section)."""
    out = ['<div id="calibration-accounts"><h3>Accounts: conversion by grade and MQA</h3>']
    out += [f"<p>{_e(line)}</p>" for line in summary_lines(a)]
    for title, first, groups in _group_tables(a):
        out.append(f"<h4>{_e(title)}</h4>")
        out.append(
            _html_table(
                _head(first),
                [[g.key, *_group_cells(g)] for g in groups],
                ["" for _ in groups],
            )
        )
        out.append(_rates_svg(groups, title))
    out.append(f"<p>{_e(lift_line(a))}</p>")
    rows = shown_thresholds(a)
    if rows and a.insufficient is None:
        out.append("<h4>MQA thresholds (accounts of an MQA grade with a known outcome)</h4>")
        out.append(
            _html_table(
                THRESHOLD_HEAD,
                [threshold_cells(a, r) for r in rows],
                ["good" if r is a.suggested else "" for r in rows],
            )
        )
    out += [f'<p class="box">{_e(line)}</p>' for line in threshold_lines(a)]
    out.append("</div>")
    return "".join(out)
