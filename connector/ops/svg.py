"""Inline SVG charts for the HTML report: plain strings, no JavaScript, nothing fetched.

Every text that comes from data is escaped here; callers pass raw values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True, slots=True)
class Bar:
    value: float | None  # 0..1, None when there is nothing to divide by
    label: str  # shown above the bar ("33%", "—")
    title: str  # the tooltip ("MQL → SQL: 4 of 12")


@dataclass(frozen=True, slots=True)
class Group:
    label: str  # under the group ("A")
    note: str  # under the label ("12 MQLs")
    bars: tuple[Bar, ...]


def grouped_bars(
    groups: Sequence[Group],
    series: Sequence[tuple[str, str]],
    *,
    title: str,
    width: int = 560,
    height: int = 300,
) -> str:
    """A grouped vertical bar chart of rates (0–100%), one colour per series
    (`series`: (legend label, colour)). Accessible: `role="img"` with a title, and every bar
    has a tooltip with its counts."""
    left, right, top, bottom = 44, 12, 42, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(groups), 1)
    slot = plot_w / n
    bar_w = min(44.0, slot * 0.7 / max(len(series), 1))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" '
        'class="chart">',
        f"<title>{escape(title)}</title>",
    ]
    # legend
    x = left
    for name, colour in series:
        out.append(f'<rect x="{x}" y="8" width="12" height="12" rx="2" fill="{colour}"/>')
        out.append(f'<text x="{x + 17}" y="18" class="legend">{escape(name)}</text>')
        x += 36 + 7 * len(name)
    # grid and axis
    for pct in (0, 25, 50, 75, 100):
        y = top + plot_h * (1 - pct / 100)
        cls = "axis" if pct == 0 else "grid"
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="{cls}"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{pct}%</text>'
        )
    for i, g in enumerate(groups):
        cx = left + slot * (i + 0.5)
        x0 = cx - bar_w * len(g.bars) / 2
        for j, (bar, (_, colour)) in enumerate(zip(g.bars, series, strict=False)):
            bx = x0 + j * bar_w
            v = 0.0 if bar.value is None else max(0.0, min(1.0, bar.value))
            h = plot_h * v
            y = top + plot_h - h
            if bar.value is not None:
                out.append(
                    f'<rect x="{bx + 2:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" '
                    f'height="{max(h, 1.0):.1f}" rx="2" fill="{colour}">'
                    f"<title>{escape(bar.title)}</title></rect>"
                )
            out.append(
                f'<text x="{bx + bar_w / 2:.1f}" y="{y - 5:.1f}" text-anchor="middle" '
                f'class="value">{escape(bar.label)}</text>'
            )
        base = top + plot_h
        out.append(
            f'<text x="{cx:.1f}" y="{base + 19:.1f}" text-anchor="middle" class="group">'
            f"{escape(g.label)}</text>"
        )
        out.append(
            f'<text x="{cx:.1f}" y="{base + 36:.1f}" text-anchor="middle" class="note">'
            f"{escape(g.note)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def funnel(steps: Sequence[tuple[str, int, str]], *, width: int = 560, colour: str) -> str:
    """Horizontal bars for Contacts → MQL → SQL → Customer: (label, count, rate text)."""
    row, label_w = 34, 96
    height = row * len(steps) + 8
    top = max((c for _, c, _ in steps), default=0) or 1
    plot_w = width - label_w - 150
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="Funnel" class="chart">',
        "<title>Funnel</title>",
    ]
    for i, (label, count, rate) in enumerate(steps):
        y = 4 + i * row
        w = max(2.0, plot_w * count / top) if count else 0.0
        out.append(
            f'<text x="{label_w - 8}" y="{y + 20}" text-anchor="end" class="group">'
            f"{escape(label)}</text>"
        )
        if w:
            out.append(
                f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row - 10}" rx="3" '
                f'fill="{colour}" opacity="{1 - 0.17 * i:.2f}"/>'
            )
        out.append(
            f'<text x="{label_w + w + 8:.1f}" y="{y + 20}" class="value">{count:,}'
            f"{escape(rate)}</text>"
        )
    out.append("</svg>")
    return "".join(out)
