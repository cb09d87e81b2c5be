"""Lifecycle decision: forward only; SQL only from sales' own signal; explicit recycle policy.

Order of precedence:
1. Recycle (policy enabled, lead status in the recycle set, stage in `from_stages`, and the lead
   status changed after the last recycle): back to `to_stage`; engagement before the recycle
   date stops counting (the engine filters on `contact.recycled_at`).
2. A stage at or past SQL, or one we do not know ("other"), is never touched.
3. Sales' signal (a lead status or a sales-signal rule such as a booked meeting) → SQL.
4. MQL: a hand-raiser (any grade), or score >= threshold with an allowed grade; never when a
   forced-grade rule blocks MQL (competitors, vendors).
5. Nothing moves backward: a lower score leaves an MQL an MQL.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from connector.model.schema import Lifecycle
from connector.types import MQL, SQL, Contact, LifecycleDecision, stage_rank

_MQL_RANK = stage_rank(MQL)
_SQL_RANK = stage_rank(SQL)


@functools.lru_cache(maxsize=64)
def _upper_of(statuses: tuple[str, ...]) -> frozenset[str]:
    return frozenset(s.upper() for s in statuses)


def _upper(statuses: Iterable[str]) -> frozenset[str]:
    """The lead statuses upper-cased (a policy's lists, once per distinct list)."""
    return _upper_of(tuple(statuses))


def decide_lifecycle(
    contact: Contact,
    *,
    score: float,
    grade: str,
    hand_raiser: str | None,
    block_mql: bool,
    sales_signal: str | None,
    policy: Lifecycle,
) -> LifecycleDecision:
    current = contact.lifecycle_stage or None
    rank = stage_rank(current)
    status = (contact.lead_status or "").upper()

    rec = policy.recycle
    if (
        rec.enabled
        and status in _upper(rec.lead_status)
        and current in rec.from_stages
        and (
            contact.recycled_at is None
            or (
                contact.lead_status_changed_at is not None
                and contact.lead_status_changed_at > contact.recycled_at
            )
        )
    ):
        return LifecycleDecision(
            current,
            rec.to_stage if policy.write_stage else None,
            mql=False,
            mql_reason=None,
            recycled=True,
            note=f"recycled to {rec.to_stage}: lead status {status}",
        )

    qualifies: str | None = None
    if not block_mql:
        if hand_raiser is not None:
            qualifies = f"hand-raiser: {hand_raiser}"
        elif score >= policy.mql.threshold and grade in policy.mql.grades:
            qualifies = "threshold"
    blocked_note = "blocked from MQL by a forced grade" if block_mql else None

    if rank >= _SQL_RANK:
        return LifecycleDecision(
            current, None, mql=qualifies is not None, mql_reason=qualifies, note="sales-owned stage"
        )

    sql_reason: str | None = None
    if status and status in _upper(policy.sql.lead_status):
        sql_reason = f"lead status {status}"
    elif sales_signal is not None:
        sql_reason = sales_signal
    if sql_reason is not None:
        return LifecycleDecision(
            current,
            SQL if policy.write_stage else None,
            mql=qualifies is not None,
            mql_reason=qualifies,
            note=f"SQL from sales signal: {sql_reason}",
        )

    if qualifies is not None:
        target = MQL if rank < _MQL_RANK and policy.write_stage else None
        return LifecycleDecision(current, target, mql=True, mql_reason=qualifies)

    target = None
    if rank < 0 and policy.initial_stage and policy.write_stage:
        target = policy.initial_stage
    return LifecycleDecision(
        current, target, mql=rank == _MQL_RANK, mql_reason=None, note=blocked_note
    )
