"""Terminal rendering (rich) of scores and explanations. No logic beyond layout."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connector.scoring.accounts import NAME_SHOWN, TITLE_SHOWN, shown_text
from connector.types import Contact, Event, ScoreResult, shown_bar
from connector.types import shown_num as _num

if TYPE_CHECKING:
    from connector.explain import AccountPart

EMAIL_SHOWN = 80  # characters of an e-mail address (CRM text) the terminal shows
DOMAIN_SHOWN = 60  # characters of a domain (CRM text)
ID_SHOWN = 40  # characters of a CRM id
EVENT_SHOWN = 120  # characters of an event's form, page, campaign name
REASON_SHOWN = 400  # characters of a reason (it may quote a title, a form name: CRM text)


def crm_text(text: str | None, limit: int) -> str:
    """CRM text as the terminal shows it, in rich markup: as reasons show names
    (`shown_text`: no control characters, at most `limit` characters, "…"), its `[` kept
    literal."""
    return escape(shown_text(text or "", limit))


STAGE_SHORT = {
    "subscriber": "subscriber",
    "lead": "lead",
    "marketingqualifiedlead": "MQL",
    "salesqualifiedlead": "SQL",
    "opportunity": "opportunity",
    "customer": "customer",
    "evangelist": "evangelist",
}


def short_stage(stage: str | None) -> str:
    return STAGE_SHORT.get(stage or "", stage or "—")


def scores_table(rows: Iterable[tuple[Contact, ScoreResult]], title: str = "Scores") -> Table:
    table = Table(title=title, show_lines=False, expand=False)
    table.add_column("contact", overflow="ellipsis", no_wrap=True, max_width=36)
    table.add_column("grade", justify="center")
    table.add_column("priority", justify="center")
    table.add_column("score", justify="right")
    table.add_column("stage")
    table.add_column("MQL reason", max_width=30, overflow="fold")
    table.add_column("top reasons", overflow="fold", max_width=90)
    for contact, r in rows:
        stage = short_stage(r.lifecycle.current_stage)
        if r.lifecycle.target_stage and r.lifecycle.target_stage != r.lifecycle.current_stage:
            stage = f"{stage} → {short_stage(r.lifecycle.target_stage)}"
        flag = " ⚑ behaviour yes, profile no" if r.profile_mismatch else ""
        table.add_row(
            contact.email or contact.id,
            r.grade,
            r.priority or "—",
            _num(r.score),
            stage,
            (r.lifecycle.mql_reason or "") + flag,
            r.top_reasons(limit=4, max_chars=400),
        )
    return table


def print_explanation(
    console: Console,
    contact: Contact,
    result: ScoreResult,
    events: Sequence[Event],
    not_counted: Sequence[str] = (),
    history: Sequence[str] = (),
    score_name: str | None = None,
    *,
    when: str | None = None,
    account: AccountPart | None = None,
    compared: str | None = None,
) -> None:
    """Every point with its rule and the events behind it; then the events that add nothing
    and why, and the stored score's history (lines from `connector.explain`). `score_name`:
    the lifecycle score's name, in a model with named scores. `when`: which score this is and
    its time (default `scored at <its scored_at>`); `account`: the contact's account and its
    part in the verdict; `compared`: how the other score (stored or recomputed) compares.
    CRM text (name, title, e-mail, event names) shows as reasons show it (`crm_text`)."""
    by_key = {f"{e.source}:{e.source_id}": e for e in events}
    name = " ".join(x for x in (contact.first_name, contact.last_name) if x)
    title = crm_text(contact.job_title, TITLE_SHOWN) if contact.job_title else "—"
    console.print(
        f"[bold]{crm_text(contact.email or contact.id, EMAIL_SHOWN)}[/bold]"
        f"{' ' + crm_text(name, NAME_SHOWN) if name else ''} · id {crm_text(contact.id, ID_SHOWN)}"
        f" · title {title}"
    )
    console.print(
        f"score {score_name + ' ' if score_name else ''}[bold]{_num(result.score)}[/bold]"
        f" (engagement {_num(result.engagement_points)})"
        f" · grade [bold]{result.grade}[/bold] (fit {_num(result.fit_points)})"
        f" · priority [bold]{result.priority or '—'}[/bold]"
        f" · model {result.model_version} ({result.model_fingerprint})"
        f" · {when or 'scored at ' + result.scored_at.isoformat()}"
    )
    lc = result.lifecycle
    stage = short_stage(lc.current_stage)
    if lc.target_stage:
        stage += f" → {short_stage(lc.target_stage)}"
    extra = f" · {crm_text(lc.note, REASON_SHOWN)}" if lc.note else ""
    mql = f" · MQL: {crm_text(lc.mql_reason, REASON_SHOWN)}" if lc.mql_reason else ""
    flag = " · behaviour yes, profile no" if result.profile_mismatch else ""
    console.print(f"stage {stage}{mql}{flag}{extra}")
    if account is not None:
        label = crm_text(account.name or account.domain or "", NAME_SHOWN)
        if account.domain and account.name and account.domain.lower() != account.name.lower():
            label += f" ({crm_text(account.domain, DOMAIN_SHOWN)})"
        console.print(
            f"account {crm_text(account.account_id, EMAIL_SHOWN)}{' ' + label if label else ''}"
            f" (scored {account.scored_at:%Y-%m-%d %H:%M} UTC): "
            f"score {_num(account.score)}, grade {account.grade}, "
            f"{crm_text(account.bar_text(), REASON_SHOWN)}",
            highlight=False,
        )
    if result.next_change_at:
        console.print(f"next change with no new events: {result.next_change_at.isoformat()}")
    if compared:
        console.print(crm_text(compared, 4 * REASON_SHOWN), highlight=False)
    fit = Table(title="Profile (fit)", title_justify="left")
    fit.add_column("points", justify="right")
    fit.add_column("rule")
    fit.add_column("why", overflow="fold")
    for r in result.reasons:
        if r.kind == "fit" and r.rule != "grade":
            fit.add_row(_num(r.points), r.rule, crm_text(r.text, REASON_SHOWN))
    console.print(fit)
    _print_engagement(console, result, by_key, "Engagement")
    if not_counted:
        console.print("[bold]Not counted[/bold]")
        for line in not_counted:
            console.print(f"  {crm_text(line, REASON_SHOWN)}", highlight=False)
    if history:
        console.print("[bold]History[/bold]")
        for line in history:
            console.print(f"  {line}", highlight=False)


def _print_engagement(
    console: Console, result: ScoreResult, by_key: dict[str, Event], title: str
) -> None:
    """The engagement reasons of `result`, each with its events, largest first."""
    eng = Table(title=title, title_justify="left")
    eng.add_column("points", justify="right", no_wrap=True)
    eng.add_column("rule", no_wrap=True)
    eng.add_column("why", overflow="fold", min_width=16)
    # an event a line, cut with an ellipsis (URLs are never broken across lines)
    eng.add_column(
        "events", overflow="ellipsis", no_wrap=True, max_width=max(24, console.width - 60)
    )
    for r in sorted(
        (r for r in result.reasons if r.kind == "engagement"), key=lambda r: -abs(r.points)
    ):
        lines = []
        for key in r.event_ids[:8]:
            ev = by_key.get(key)
            if ev is None:
                lines.append(key)
                continue
            a = ev.attributes
            what = a.get("form") or a.get("name") or a.get("url") or a.get("campaign") or ""
            text = str(what)
            if text.startswith(("https://", "http://")):  # the page: its path says enough
                with suppress(ValueError):  # not a URL after all (`http://[`): as it is
                    text = urlsplit(text).path or text
            text = crm_text(text, EVENT_SHOWN)  # a form or campaign name is CRM text
            lines.append(f"{ev.occurred_at:%Y-%m-%d %H:%M} {crm_text(ev.type, 40)} {text}")
        if len(r.event_ids) > 8:
            lines.append(f"… and {len(r.event_ids) - 8} more")
        eng.add_row(_num(r.points), r.rule, crm_text(r.text, REASON_SHOWN), "\n".join(lines))
    if eng.row_count:
        console.print(eng)
    else:
        console.print(f"[bold]{title}[/bold]: no event counts")


def print_named_explanation(
    console: Console,
    name: str,
    threshold: float | None,
    result: ScoreResult,
    events: Sequence[Event],
) -> None:
    """One named score (a model's `scores:`): its headline and every engagement point with
    its events. Its fit is the shared one unless the score overrides it (its grade says)."""
    by_key = {f"{e.source}:{e.source_id}": e for e in events}
    qualified = threshold is not None and result.score >= threshold
    verdict = ""
    if threshold is not None:
        verdict = f" · {'qualified' if qualified else 'not qualified'} ({shown_bar(threshold)}+)"
    console.print(
        f"[bold]score {name}[/bold]: [bold]{_num(result.score)}[/bold]"
        f" (engagement {_num(result.engagement_points)})"
        f" · grade [bold]{result.grade}[/bold] (fit {_num(result.fit_points)})"
        f" · priority [bold]{result.priority or '—'}[/bold]{verdict}",
        highlight=False,
    )
    _print_engagement(console, result, by_key, f"Engagement ({name})")
