"""Terminal rendering (rich) of the operator commands' results. Layout only, no logic."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from connector.console import fit_table
from connector.ops.accounts import AccountExplanation, AccountRow
from connector.ops.common import iso_min
from connector.ops.dead_letters import RecordLabel, RetryResult
from connector.ops.rescore import (
    NO_GRADE,
    NO_SCORE,
    AccountPreview,
    ContactChange,
    RescorePreview,
)
from connector.ops.simulate import GRADES, Simulation
from connector.ops.simulate_accounts import AccountSimulation
from connector.ops.status import Status, run_counts, run_duration
from connector.pipeline import PlannedWrite
from connector.scoring.accounts import NAME_SHOWN, TITLE_SHOWN, by_account, shown_text
from connector.state.dead_letters import Dismissal
from connector.state.store import DeadLetter
from connector.text import display_text
from connector.types import shown_num as num
from connector.types import shown_signed as signed
from connector.views import DOMAIN_SHOWN, EMAIL_SHOWN, REASON_SHOWN, crm_text, short_stage

MAX_FLIPS = 30
MESSAGE_SHOWN = 300  # characters of a run's message `status` shows (longer: cut at a space, "…")
MEMBERS_SHOWN = 50  # `explain --account`: members listed in the terminal (--json: all)


def _mql_short(reason: str | None) -> str:
    if reason is None:
        return "no"
    if reason.startswith("hand-raiser"):
        return "yes (hand-raiser)"
    return f"yes ({crm_text(reason, REASON_SHOWN)})"  # an account's may name it: CRM text


# ------------------------------------------------------------------------ rescore


def print_preview(console: Console, p: RescorePreview, *, dry_run: bool) -> None:
    stored = ", ".join(f"{v}: {n}" for v, n in p.stored_versions.most_common()) or "none"
    console.print(
        f"[bold]Rescore {'preview' if dry_run else 'plan'}[/bold] — model "
        f"[bold]{p.model_version}[/bold] ({p.model_fingerprint}) vs the stored scores "
        f"({stored}{f'; {p.unscored} never scored' if p.unscored else ''}), "
        f"as of {p.now:%Y-%m-%d %H:%M} UTC"
    )
    console.print(p.headline() + (f" ({p.stage_to_mql} moved to MQL)" if p.stage_to_mql else ""))
    for named in p.named.values():  # the model's other scores (the counts above cover all)
        console.print(named.headline(), highlight=False)
    parts = [f"mean {signed(p.mean_delta)}"]
    for label, c in (("largest rise", p.largest_up), ("largest drop", p.largest_down)):
        if c is not None:
            parts.append(
                f"{label} {signed(c.delta)} ({_label(c.label)}: {num(c.before_score or 0)} → "
                f"{num(c.after_score)})"
            )
    console.print(f"score change over {p.delta_n} scored contact(s): " + "; ".join(parts))
    if p.write_properties:
        console.print(
            "properties to write: "
            + ", ".join(f"{k} {n}" for k, n in p.write_properties.most_common())
        )
    console.print(_transitions(p))
    if p.sample:
        console.print(_sample_table(p.sample, f"Sample: {len(p.sample)} changed contact(s)"))
    if p.accounts is not None:
        _print_account_preview(console, p.accounts)


def _print_account_preview(console: Console, a: AccountPreview) -> None:
    console.print(a.headline(), highlight=False)
    console.print(_matrix(a.transitions, "Account grade: stored (rows) → rescored (columns)"))
    console.print(a.companies_line(), highlight=False)
    if not a.sample:
        return
    table = Table(
        title=f"Sample: {len(a.sample)} changed account(s), MQA flips first", title_justify="left"
    )
    table.add_column("account", overflow="ellipsis", no_wrap=True, max_width=30)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("grade", justify="center", no_wrap=True)
    table.add_column("MQA", overflow="fold", max_width=60)
    for c in a.sample:
        before = "—" if c.before_score is None else num(c.before_score)
        mqa = "MQA" if c.after_mqa else "no"
        if c.mqa_flip:
            mqa = f"became MQA ({c.after_mqa_reason})" if c.after_mqa else "stopped being MQA"
        if c.dropped:
            mqa += " (no live member left: values cleared)"
        table.add_row(
            _label(c.label),
            f"{before} → {'—' if c.dropped else num(c.after_score)}",
            f"{c.before_grade or '—'} → {c.after_grade}",
            mqa,
        )
    console.print(table)


def _matrix(transitions: Counter[tuple[str, str]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("before \\ after")
    # an account left with no live member: a column of its own (accounts only)
    afters = (*GRADES, NO_SCORE) if any(k[1] == NO_SCORE for k in transitions) else GRADES
    for g in afters:
        table.add_column(g, justify="right")
    table.add_column("total", justify="right")
    befores = [g for g in (*GRADES, NO_GRADE) if any(k[0] == g for k in transitions)]
    for b in befores:
        cells: list[Text | str] = []
        for a in afters:
            n = transitions.get((b, a), 0)
            style = "dim" if (a == b or n == 0) else "bold yellow"
            cells.append(Text(str(n) if n else "·", style=style))
        total = sum(n for (x, _), n in transitions.items() if x == b)
        table.add_row("never scored" if b == NO_GRADE else b, *cells, str(total))
    return table


def _transitions(p: RescorePreview) -> Table:
    return _matrix(p.transitions, "Grade: stored (rows) → rescored (columns)")


def _sample_table(rows: list[ContactChange], title: str) -> Table:
    """Contacts whose score changes, before → after (the rescore preview's sample and the
    rows of `sync --dry-run`, which also shows the lifecycle stage)."""
    with_stage = any(c.stage is not None for c in rows)
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("contact", overflow="ellipsis", no_wrap=True, max_width=34)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("grade", justify="center", no_wrap=True)
    if with_stage:  # the stage says MQL, and where the contact stands
        table.add_column("stage", no_wrap=True)
    else:
        table.add_column("MQL", max_width=28, overflow="fold")
    table.add_column("reasons that differ", overflow="fold", max_width=90)
    for c in rows:
        before = "—" if c.before_score is None else num(c.before_score)
        mql = _mql_short(c.before_mql)
        if (c.before_mql is None) != (c.after_mql is None) or c.before_mql != c.after_mql:
            mql = f"{mql} → {_mql_short(c.after_mql)}"
        why = [f"[dim]was[/dim] {crm_text(r, REASON_SHOWN)}" for r in c.removed] + [
            f"[green]now[/green] {crm_text(r, REASON_SHOWN)}" for r in c.added
        ]
        table.add_row(
            _label(c.label),
            f"{before} → {num(c.after_score)}",
            f"{c.before_grade or '—'} → {c.after_grade}",
            (c.stage or "—") if with_stage else mql,
            "\n".join(why) or "writes " + ", ".join(c.writes),
        )
    return table


# ------------------------------------------------------------------------ sync --dry-run

REASON_WIDTH = 60  # a reason line longer than this ends in "…" at a word boundary


def _reason_lines(text: str | None) -> list[str]:
    return [r for r in (text or "").split("; ") if r]


def _shorten(line: str, width: int = REASON_WIDTH) -> str:
    if len(line) <= width:
        return line
    cut = line[: width - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


def planned_change(p: PlannedWrite) -> ContactChange:
    """A dry run's planned write as the rescore preview's row: before = what leadscore last
    wrote (nothing on a new state DB), after = what the CRM should show now."""
    old, new = _reason_lines(p.before.get("reasons")), _reason_lines(p.after.get("reasons"))
    target = p.changes.get("lifecycle_stage")
    stage = short_stage(p.stage)
    return ContactChange(
        contact_id=p.contact_id,
        label=p.email or p.contact_id,
        before_score=float(p.before["score"]) if p.before.get("score") else None,
        before_grade=p.before.get("grade"),
        before_mql=p.before.get("mql_reason"),
        before_version=p.before.get("model_version"),
        after_score=float(p.after.get("score") or 0),
        after_grade=p.after.get("grade", "—"),
        after_mql=p.after.get("mql_reason"),
        removed=tuple(_shorten(r) for r in old if r not in new),
        added=tuple(_shorten(r) for r in new if r not in old),
        writes=tuple(sorted(p.changes)),
        stage=f"{stage} → {short_stage(target)}" if target else stage,
    )


def print_sync_preview(
    console: Console, planned: list[PlannedWrite], total: int, companies: int = 0
) -> None:
    """`sync --dry-run`: the first planned contact writes in a table, then how many more;
    `total` contacts, and `companies` company records (account scoring) besides."""
    if planned:
        console.print(
            _sample_table(
                [planned_change(p) for p in planned],
                f"Would update {total} contact(s): the first {len(planned)}",
            )
        )
    if total > len(planned):
        console.print(f"…and {total - len(planned)} more")
    and_companies = f" and {companies} company record(s)" if companies else ""
    console.print(
        f"Would update {total} contact(s){and_companies} (dry run, nothing written).",
        highlight=False,
    )


# ------------------------------------------------------------------------ simulate


def print_simulation(console: Console, s: Simulation, *, score: str | None = None) -> None:
    """`score`: a named score's simulation (its verdict: qualified at its threshold)."""
    what = f"{score}-qualified" if score else "MQL-qualified"
    console.print(
        f"[bold]Simulation[/bold] on {s.contacts} stored contact(s) as of "
        f"{s.now:%Y-%m-%d %H:%M} UTC — nothing is written"
    )
    console.print(
        f"{what}: [bold]{s.current_mqls}[/bold] with {s.current_label} → "
        f"[bold]{s.simulated_mqls}[/bold] with {s.simulated_label} "
        f"(+{s.gained} / −{s.lost})"
    )
    grades = Table(title=f"{what} by grade", title_justify="left")
    grades.add_column("grade")
    grades.add_column("current", justify="right")
    grades.add_column("simulated", justify="right")
    grades.add_column("change", justify="right")
    for g, (cur, sim) in s.by_grade.items():
        grades.add_row(g, str(cur), str(sim), signed(sim - cur) if sim != cur else "·")
    console.print(grades)
    if s.curve:
        console.print(_curve(s, what))
    if s.flips:
        flips = Table(
            title=f"Would flip: {len(s.flips)} contact(s)"
            + (f" (first {MAX_FLIPS})" if len(s.flips) > MAX_FLIPS else ""),
            title_justify="left",
        )
        flips.add_column("contact", overflow="ellipsis", no_wrap=True, max_width=40)
        flips.add_column("grade", justify="center")
        flips.add_column("score", justify="right")
        flips.add_column("current")
        flips.add_column("simulated")
        for f in s.flips[:MAX_FLIPS]:
            grade = f.current.grade
            if f.simulated.grade != grade:
                grade = f"{grade} → {f.simulated.grade}"
            score = num(f.current.score)
            if f.simulated.score != f.current.score:
                score = f"{score} → {num(f.simulated.score)}"
            flips.add_row(
                _label(f.label),
                grade,
                score,
                _sim_short(f.current.mql),
                _sim_short(f.simulated.mql),
            )
        console.print(flips)
    else:
        console.print(f"No contact would change its {'verdict' if score else 'MQL verdict'}.")
    if s.accounts is not None:
        _print_account_simulation(console, s.accounts)


def _print_account_simulation(console: Console, a: AccountSimulation) -> None:
    """Accounts: grade transitions, MQA flips (by name and domain), and the contacts whose
    verdict is their account's on either side."""
    if not a.accounts:
        console.print(
            "Accounts: none with members in the state DB yet (a sync with LEADSCORE_ACCOUNTS=true "
            "resolves them).",
            highlight=False,
        )
        return
    t0, t1 = a.current_mqa_threshold, a.simulated_mqa_threshold
    bars = "" if t0 == t1 else f" (MQA threshold {_opt(t0)} → {_opt(t1)})"
    console.print(
        f"Accounts: {a.accounts}; MQAs {a.current_mqas} → {a.simulated_mqas} "
        f"(+{a.became_mqa} became / −{a.stopped_mqa} stopped being MQA){bars}; contacts "
        f"MQL-qualified by their account's MQA {a.account_mqls[0]} → {a.account_mqls[1]}",
        highlight=False,
    )
    console.print(_matrix(a.transitions, "Account grade: current (rows) → simulated (columns)"))
    if a.flips:
        table = Table(title=f"MQA flips: {len(a.flips)} account(s)", title_justify="left")
        table.add_column("account", overflow="ellipsis", no_wrap=True, max_width=44)
        table.add_column("score", justify="right", no_wrap=True)
        table.add_column("grade", justify="center", no_wrap=True)
        table.add_column("MQA", overflow="fold", max_width=60)
        for f in a.flips:
            score = num(f.current_score)
            if f.simulated_score != f.current_score:
                score = f"{score} → {num(f.simulated_score)}"
            grade = f.current_grade
            if f.simulated_grade != grade:
                grade = f"{grade} → {f.simulated_grade}"
            mqa = f"becomes MQA ({f.simulated_reason})" if f.gained else "stops being MQA"
            table.add_row(_label(f.label), score, grade, mqa)
        console.print(table)
    else:
        console.print("No account would change its MQA verdict.")
    if a.contact_flips:
        table = Table(
            title=f"Contacts whose MQL verdict changes with their account: {len(a.contact_flips)}"
            + (f" (first {MAX_FLIPS})" if len(a.contact_flips) > MAX_FLIPS else ""),
            title_justify="left",
        )
        table.add_column("contact", overflow="ellipsis", no_wrap=True, max_width=40)
        table.add_column("account", overflow="ellipsis", no_wrap=True, max_width=36)
        table.add_column("grade", justify="center")
        table.add_column("score", justify="right")
        table.add_column("current", no_wrap=True)
        table.add_column("simulated", no_wrap=True)
        for c in a.contact_flips[:MAX_FLIPS]:
            table.add_row(
                _label(c.label),
                _label(c.account),
                c.grade,
                num(c.score),
                _sim_short(c.current),
                _sim_short(c.simulated),
            )
        console.print(table)


def _sim_short(reason: str | None) -> str:
    """A simulated verdict in a cell: an MQL through the account names no more than that (the
    account section names the account)."""
    return "yes (account MQA)" if by_account(reason) else _mql_short(reason)


def _opt(v: float | None) -> str:
    return "—" if v is None else num(v)


def _curve(s: Simulation, what: str = "MQL-qualified") -> Table:
    title = f"{what} by threshold"
    a = s.accounts
    if a is not None and a.current_mqa_threshold != a.simulated_mqa_threshold:
        title += f" (at MQA threshold {_opt(a.simulated_mqa_threshold)})"
    table = Table(title=title, title_justify="left")
    table.add_column("threshold", justify="right")
    table.add_column("MQLs" if what == "MQL-qualified" else "qualified", justify="right")
    table.add_column("", min_width=30)
    table.add_column("")
    top = max((n for _, n in s.curve), default=0) or 1
    for t, n in s.curve:
        marks = []
        if t == s.current_threshold:
            marks.append("← current")
        if t == s.simulated_threshold:
            marks.append("← simulated")
        bar = "█" * max(1 if n else 0, round(30 * n / top))
        style = "bold" if marks else ""
        table.add_row(Text(num(t), style=style), Text(str(n), style=style), bar, " ".join(marks))
    return table


# ------------------------------------------------------------------------ status


def print_status(console: Console, st: Status, state_path: str) -> None:
    console.print(f"[bold]leadscore status[/bold] — {st.crm}, state DB {state_path}")
    if st.model_problem and st.active_model is None:
        in_use = f"[red]invalid model file: {st.model_problem}[/red]"
    else:
        in_use = st.model_in_use or "—"
    if st.model_problem and st.active_model is not None:
        console.print(f"[red]invalid configured model file: {st.model_problem}[/red]")
    stored = ", ".join(f"{n:,} from {v} ({fp})" for v, fp, n in st.stored_models) or "none yet"
    console.print(f"model in use: {in_use}; scores stored: {stored}")
    if st.active_model is not None:
        console.print(f"model in force (state DB): {st.active_model}")
    if st.configured_model is not None:
        notes = "".join(f" — [yellow]{n}[/yellow]" for n in st.configured_notes)
        console.print(f"configured model file: {st.configured_model}{notes}")
    if st.scored_with_other_models:
        console.print(
            f"[yellow]{st.scored_with_other_models:,} stored score(s) come from another model: "
            "preview with `leadscore rescore --dry-run`, apply with `leadscore rescore`[/yellow]"
        )
    dl = ", ".join(f"{k} {n:,}" for k, n in sorted(st.dead_letters.items()))
    console.print(f"stored: contacts {st.contacts:,} · events {st.events:,} · scored {st.scored:,}")
    console.print(
        f"queues: pending writes {st.pending_writes:,} · open dead letters "
        f"{st.open_dead_letters:,}" + (f" ({dl})" if dl else "") + f" · due for rescore {st.due:,}"
    )
    if st.accounts:
        console.print(
            f"accounts: scored {st.accounts:,} · MQA {st.mqas:,} · due for rescore "
            f"{st.accounts_due:,} (`leadscore accounts` lists the hottest)",
            highlight=False,
        )
    if st.optimize_hint:
        console.print(
            f"[yellow]{st.events_spread:.0%} of the events lie apart from their contact's "
            "others: `leadscore optimize` makes full rescores read them in order[/yellow]"
        )
    cursors = Table(title="Cursors", title_justify="left")
    cursors.add_column("stream")
    cursors.add_column("position (UTC)")
    cursors.add_column("updated (UTC)")
    for c in st.cursors:
        cursors.add_row(c.stream, Text(c.describe()), iso_min(c.updated_at))
    if not st.cursors:
        cursors.add_row("—", "no sync has run yet", "")
    console.print(fit_table(console, cursors))
    runs = Table(title=f"Last {len(st.runs)} run(s)", title_justify="left")
    for col, just in (
        ("#", "right"),
        ("kind", "left"),
        ("status", "left"),
        ("started (UTC)", "left"),
        ("duration", "right"),
        ("counts", "left"),
        ("API calls", "right"),
    ):
        runs.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in st.runs:
        color = {
            "ok": "green",
            "partial": "yellow",
            "running": "cyan",
            "probably interrupted": "yellow",
        }.get(r.status, "red")
        runs.add_row(
            str(r.id),
            r.kind,
            Text(r.status, style=color),
            iso_min(r.started_at),
            run_duration(r),
            run_counts(r),
            f"{r.api_calls:,}",
        )
    console.print(fit_table(console, runs))
    for r in st.runs:  # a run's message is a sentence: a line of its own, under the table
        if r.message:
            console.print(
                Text(f"run {r.id} ({r.kind}, {r.status}): {shown_text(r.message, MESSAGE_SHOWN)}")
            )


# ------------------------------------------------------------------------ dead letters


def _who(contact_id: str | None, labels: dict[str, str]) -> str:
    if not contact_id:
        return "—"
    label = labels.get(contact_id, "")
    shown = f"{label} ({contact_id})" if label and label != contact_id else contact_id
    return crm_text(shown, NAME_SHOWN)


def print_dead_letters(
    console: Console,
    letters: list[DeadLetter],
    labels: dict[int, RecordLabel],
    kind: str | None,
    *,
    hidden: int = 0,
) -> None:
    """The open dead letters, and the dismissed ones among `letters` (`--all`: a `dismissed
    (UTC)` column); `labels`: what each is about (`record_labels`: a contact or a company), by dead
    letter id; `hidden`: how many dismissed ones are not shown (a line says so)."""
    what = f"{kind} dead letter" if kind else "dead letter"
    note = f"{hidden:,} dismissed {what}(s) not shown (`--all` lists them)." if hidden else None
    if not letters:
        console.print(f"No open {what}s.")
        if note:
            console.print(note)
        return
    dismissed = sum(d.dismissed_at is not None for d in letters)
    title = f"Open dead letters: {len(letters)}"
    if dismissed:
        title = f"Dead letters: {len(letters) - dismissed} open, {dismissed} dismissed"
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("record", overflow="ellipsis", no_wrap=True, max_width=36)
    table.add_column("kind")
    table.add_column("attempts", justify="right")
    table.add_column("reason", overflow="fold", max_width=70)
    table.add_column("first seen (UTC)")
    table.add_column("last tried (UTC)")
    if dismissed:
        table.add_column("dismissed (UTC)")
    for d in letters:
        shown_dismissed = [iso_min(d.dismissed_at)] if dismissed else []
        table.add_row(
            str(d.id),
            # CRM text (a name from the very record that failed to read): plain text, never
            # markup (`[/]` in a name), without control or bidi characters
            Text(shown_text(str(labels[d.id]), MESSAGE_SHOWN)) if d.id in labels else "—",
            d.kind,
            str(d.attempts),
            Text(display_text(d.reason or "")),
            iso_min(d.first_seen_at),
            iso_min(d.last_tried_at),
            *shown_dismissed,
        )
    console.print(table)
    if note:
        console.print(note)


def dismissal_line(
    dl_id: str,
    outcome: Dismissal,
    label: RecordLabel | None,
    dismissed_at: datetime | None,
    crm: str,
) -> str:
    """What `dead-letters dismiss` says of one id (an error's text for `unknown` and `not
    input`, without its `error: `)."""
    about = f" ({shown_text(str(label), MESSAGE_SHOWN)})" if label is not None else ""
    if outcome == "dismissed":
        return f"dismissed dead letter {dl_id}{about}"
    if outcome == "already dismissed":
        return f"dead letter {dl_id}{about} was dismissed already, at {iso_min(dismissed_at)} UTC"
    if outcome == "resolved":
        return f"dead letter {dl_id} is resolved already (its record read cleanly)"
    if outcome == "not input":
        return (
            f"dead letter {dl_id} is not an input dead letter: only those are dismissed "
            "(`leadscore dead-letters --retry` re-sends writes)"
        )
    return f"no dead letter {shown_text(dl_id, 40)} in the state DB for {crm}"


def print_retry(console: Console, r: RetryResult, labels: dict[str, str]) -> None:
    if not r.outcomes:
        console.print("No open write dead letters to retry.")
        return
    table = Table(title="Retry", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("contact", overflow="ellipsis", no_wrap=True, max_width=36)
    table.add_column("outcome")
    table.add_column("detail", overflow="fold", max_width=80)
    for o in r.outcomes:
        color = {"failed": "red", "no score": "yellow"}.get(o.outcome, "green")
        detail = o.detail + (f" (attempts {o.attempts})" if o.outcome == "failed" else "")
        table.add_row(
            str(o.dead_letter_id), _who(o.contact_id, labels), Text(o.outcome, style=color), detail
        )
    console.print(table)
    console.print(r.line())


# ------------------------------------------------------------------------ accounts


def accounts_table(
    rows: list[AccountRow], title: str, *, compact: bool = False, width: int = 100
) -> Table:
    """The hottest accounts: account (name, domain, members), grade, score, MQA (with its
    reason), engaged people (names and titles, "…and N more"). `compact`: one line per
    account (the demo)."""
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD,
        show_edge=not compact,
        pad_edge=not compact,
    )
    # CRM text as reasons show it (`crm_text`: no control characters, at most so long)
    names = {r.account_id: shown_text(r.name, NAME_SHOWN) for r in rows}
    domains = {r.account_id: shown_text(r.domain or "", DOMAIN_SHOWN) for r in rows}
    account_w = min(
        24,
        max(
            (
                len(
                    names[r.account_id] if compact else domains[r.account_id] or names[r.account_id]
                )
                for r in rows
            ),
            default=7,
        ),
    )
    table.add_column(
        "account", overflow="ellipsis", no_wrap=True, min_width=account_w, max_width=24
    )
    table.add_column("grade", justify="center", no_wrap=True, min_width=5)
    table.add_column("score", justify="right", no_wrap=True, min_width=5)
    table.add_column(
        "MQA",
        no_wrap=compact,
        overflow="ellipsis" if compact else "fold",
        min_width=3 if compact else 14,
        max_width=18,
    )
    # what the other columns leave (one line per person, cut with "…")
    used = account_w + 5 + 5 + (18 + 16 if not compact else 3 + 12)
    table.add_column(
        "engaged people" if not compact else "engaged/members: people",
        overflow="ellipsis",
        no_wrap=True,
        max_width=max(16, width - used),
    )
    for r in rows:
        name, domain = names[r.account_id], domains[r.account_id]
        if compact:
            line = f"{len(r.engaged)}/{r.members}: " + r.people(4)
            table.add_row(Text(name), r.grade, num(r.score), "MQA" if r.mqa else "—", Text(line))
            continue
        mqa = Text(f"MQA: {r.mqa_reason}", style="bold green") if r.mqa else Text("—")
        people = [
            shown_text(p.name, NAME_SHOWN)
            + (f", {shown_text(p.title, TITLE_SHOWN)}" if p.title else "")
            for p in r.engaged[:3]
        ]
        if len(r.engaged) > 3:
            people.append(f"…and {len(r.engaged) - 3} more")
        account = name + (f"\n{domain}" if domain and r.domain != r.name else "")
        table.add_row(
            Text(f"{account}\n{r.members} member{'' if r.members == 1 else 's'}"),
            r.grade,
            num(r.score),
            mqa,
            Text("\n".join(people) or "—"),
        )
    return table


def print_accounts(
    console: Console, rows: list[AccountRow], scored: int, mqas: int, *, accounts_on: bool
) -> None:
    """`leadscore accounts`: the hottest `rows` of the `scored` accounts, `mqas` of which
    (all of them, shown or not) are MQAs."""
    if not rows:
        console.print(
            "No scored accounts yet: run `leadscore sync` to score them."
            if accounts_on
            else "No scored accounts yet: turn on LEADSCORE_ACCOUNTS=true and run "
            "`leadscore sync`.",
            highlight=False,
        )
        return
    console.print(
        accounts_table(
            rows,
            f"The {len(rows)} hottest of {scored} scored account(s) ({mqas} MQA)",
            width=console.width,
        )
    )


def print_account_explanation(console: Console, x: AccountExplanation) -> None:
    for note in x.notes:
        console.print(f"note: {crm_text(note, 400)}", highlight=False)
    if x.also_matching:
        others = ", ".join(
            f"{crm_text(o['account_id'], EMAIL_SHOWN)} ({crm_text(o['name'], NAME_SHOWN)}, "
            f"score {num(o['score'])})"
            for o in x.also_matching
        )
        console.print(
            f"note: showing {crm_text(x.account_id, EMAIL_SHOWN)}; the domain also matches "
            f"{others}: `leadscore explain --account ID` for one of them",
            highlight=False,
        )
    name = crm_text(x.name, NAME_SHOWN)
    where = (
        f" ({crm_text(x.domain, DOMAIN_SHOWN)})"
        if x.domain and x.domain.lower() != x.name.lower()
        else ""
    )
    console.print(
        f"[bold]{name}[/bold]{where} — {crm_text(x.account_id, EMAIL_SHOWN)}: "
        f"score [bold]{num(x.score)}[/bold], "
        f"grade [bold]{x.grade}[/bold], "
        + (
            f"[bold green]MQA[/bold green] ({x.mqa_reason})"
            if x.mqa
            # a force rule's description is the model file's text: no markup
            else "not an MQA" + (f" ({escape('; '.join(x.not_mqa))})" if x.not_mqa else "")
        )
        + f"; model {x.model_version}, scored {iso_min(x.scored_at)} UTC",
        highlight=False,
    )
    points = Table(title="Points", title_justify="left", show_lines=False)
    points.add_column("points", justify="right", no_wrap=True)
    points.add_column("rule", no_wrap=True)
    points.add_column("why", overflow="fold", ratio=2)
    points.add_column("people", overflow="fold", ratio=1)
    for p in x.points:
        if p.rule == "grade" and p.category == "account_fit":  # the sum of the fit rules
            points.add_row(f"fit {num(p.points)}", "grade", Text(display_text(p.text)), "—")
            continue
        text = p.text
        if p.category == "account_fit" and text.startswith(signed(p.points) + " "):
            text = text[len(signed(p.points)) + 1 :]
        # names as reasons show them (a 10 kB name, control characters); --json: whole
        people = ", ".join(shown_text(n, NAME_SHOWN) for n in p.people)
        points.add_row(
            signed(p.points),
            p.rule,
            Text(" ".join(display_text(text).splitlines())),
            Text(people or "—"),
        )
    console.print(points)
    shown = x.members[:MEMBERS_SHOWN]
    more = len(x.members) - len(shown)
    members = Table(
        title=f"Members: {len(x.members)}"
        + (f" (the {len(shown)} highest scored; `--json` lists all)" if more else ""),
        title_justify="left",
    )
    members.add_column("contact", overflow="ellipsis", no_wrap=True, max_width=30)
    members.add_column("title", overflow="ellipsis", no_wrap=True, max_width=18)
    members.add_column("score", justify="right", no_wrap=True, min_width=5)
    members.add_column("grade", justify="center", no_wrap=True, min_width=5)
    members.add_column("stage", no_wrap=True, min_width=5)
    members.add_column("engaged", justify="right", no_wrap=True, min_width=7)
    members.add_column("counted", justify="right", no_wrap=True, min_width=7)
    for m in shown:
        members.add_row(
            Text(shown_text(m.email or m.name, NAME_SHOWN)),
            Text(shown_text(m.title, TITLE_SHOWN) if m.title else "—"),
            "—" if m.score is None else num(m.score),
            m.grade or "—",
            short_stage(m.stage),
            num(m.engagement_points),
            num(m.counted_points),
        )
    console.print(members)
    if more:
        console.print(f"…and {more} more member(s)", highlight=False)
    if x.not_counted:
        console.print("[bold]Did not count[/bold]")
        for line in x.not_counted:  # they name people: CRM text, never markup
            console.print(Text(f"  - {display_text(line)}"), highlight=False)
    if x.history:
        console.print("[bold]History[/bold]")
        for h in x.history:
            at = h["scored_at"]
            console.print(
                f"  {iso_min(at)}  {h['model_version']}: score {num(float(h['score']))}, "
                f"grade {h['grade']}" + (", MQA" if h["mqa"] else ""),
                highlight=False,
            )


def _label(text: str) -> str:
    """A contact's or account's label in a table or a line of markup: as reasons name people
    (`crm_text`: no control or bidi characters, at most `NAME_SHOWN` characters, its `[`
    literal: a name holding `[/]` is no markup)."""
    return crm_text(text, NAME_SHOWN)
