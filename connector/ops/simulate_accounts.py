"""The account side of `leadscore simulate` (issue 21): with account scoring on, each side of
the simulation (the model in force, the simulated setting) rolls its accounts up from its own
members' scores with the pure scorer the sync uses (`connector.scoring.accounts`), and applies
the MQA's lower contact MQL bar (`apply_account_mql`) to the contacts the threshold left out.

What it reports: account grade transitions (current → simulated), the accounts that become or
stop being MQAs, and the contacts whose MQL verdict is the account's (`account MQA: …`) on
either side. Like the rest of `simulate`, the verdict is the model's, whatever the stage: the
MQA bar is tried on the contact as a plain lead (a contact our sync already moved to MQL
through its account still counts as qualified by its account). Nothing is written.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from connector.model.loader import LoadedModel
from connector.scoring.accounts import apply_account_mql, by_account, scored_hits
from connector.types import (
    MQL,
    AccountResult,
    Company,
    Contact,
    LifecycleDecision,
    ScoreResult,
    stage_rank,
)

if TYPE_CHECKING:
    from connector.pipeline import Enricher
    from connector.state.store import StateStore

NO_ACCOUNT_GRADE = "—"  # a side whose model has no (enabled) accounts section


def accounts_enabled(model: LoadedModel) -> bool:
    section = model.model.accounts
    return section is not None and section.enabled


def with_mqa_threshold(model: LoadedModel, threshold: float) -> LoadedModel:
    """The same model with another MQA threshold (in memory; never stored or written)."""
    section = model.model.accounts
    if section is None:
        raise ValueError("the model has no accounts section")
    mqa = section.mqa.model_copy(update={"threshold": threshold})
    changed = model.model.model_copy(update={"accounts": section.model_copy(update={"mqa": mqa})})
    return dataclasses.replace(
        model, model=changed, fingerprint=f"{model.fingerprint}~mqa{threshold:g}"
    )


@dataclass(frozen=True, slots=True)
class AccountFlip:
    """An account that becomes or stops being an MQA in the simulation."""

    account_id: str
    label: str  # "Northwind Data (northwind-data.com)"
    current_score: float
    current_grade: str
    simulated_score: float
    simulated_grade: str
    gained: bool  # became an MQA (else stopped being one)
    simulated_reason: str | None  # the MQA reason when it became one


@dataclass(frozen=True, slots=True)
class AccountContactFlip:
    """A contact whose MQL verdict flips with its account's part in it."""

    contact_id: str
    label: str  # e-mail, or the id
    account: str  # the account's label
    grade: str
    score: float
    current: str | None  # the MQL verdict now and simulated (`account MQA: …`, threshold, …)
    simulated: str | None


@dataclass
class AccountSimulation:
    """Accounts now vs simulated, and the contacts their MQA verdict qualifies."""

    current_mqa_threshold: float | None
    simulated_mqa_threshold: float | None
    accounts: int = 0
    current_mqas: int = 0
    simulated_mqas: int = 0
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    flips: list[AccountFlip] = field(default_factory=list)  # became MQA first, by score
    # contacts MQL-qualified through their account's MQA: [current, simulated]
    account_mqls: list[int] = field(default_factory=lambda: [0, 0])
    # contacts whose verdict flips with the account's part in it (an `account MQA` verdict on
    # one side at least), in the order of the simulation's flips
    contact_flips: list[AccountContactFlip] = field(default_factory=list)

    @property
    def became_mqa(self) -> int:
        return sum(f.gained for f in self.flips)

    @property
    def stopped_mqa(self) -> int:
        return len(self.flips) - self.became_mqa


class AccountSides:
    """Members' parts recorded while the contacts are rescored (one side per model), every
    account scored per side from them, and the MQA bar for the contacts at an MQA."""

    def __init__(
        self,
        store: StateStore,
        crm: str,
        models: Sequence[LoadedModel],
        enricher: Enricher | None = None,
    ) -> None:
        from connector.account_stage import AccountStage
        from connector.state.accounts import live_account_members

        self.store = store
        self.crm = crm
        self.models = list(models)
        self.members_of = live_account_members(store, crm)
        self.account_of = {
            cid: account_id for account_id, rows in self.members_of.items() for cid, _, _ in rows
        }
        # the sync's own account builder (firmographics from the company record, filled from
        # the enrichment cache), one per side: its compiled `accounts:` section
        self.stages = [
            AccountStage.detached(store, crm, m, enricher) if accounts_enabled(m) else None
            for m in self.models
        ]
        self.parts: list[dict[str, tuple[float, str, tuple[tuple[str, float], ...]]]] = [
            {} for _ in self.models
        ]
        self.results: list[dict[str, AccountResult]] = [{} for _ in self.models]
        self.labels: dict[str, str] = {}
        self.mqls = [0, 0]  # contacts MQL-qualified through their account, per side

    def linked(self, contact_id: str) -> bool:
        return contact_id in self.account_of

    def record(self, side: int, result: ScoreResult) -> None:
        """What account scoring reads of a member (`member_hits`, as the sync reads it), its
        events' times from the scorer (`result` scored within `ops.common.with_hit_times`)."""
        self.parts[side][result.contact_id] = (
            result.engagement_points,
            result.grade,
            scored_hits(result),
        )

    def score(self, now: datetime) -> None:
        """Every account with live members, scored on each side."""
        companies = self.store.get_crm_companies(
            self.crm, [a.partition(":")[2] for a in self.members_of if a.startswith("company:")]
        )
        for side, stage in enumerate(self.stages):
            if stage is None:
                continue
            scored = stage.score_parts(self.members_of, companies, self.parts[side], now)
            for account_id, account, result in scored:
                self.results[side][account_id] = result
                if account_id not in self.labels:
                    self.labels[account_id] = _label(account_id, account.company)

    def verdict(self, side: int, contact: Contact, result: ScoreResult) -> str | None:
        """The MQL verdict the contact's account gives it on `side` (the MQA's lower bar),
        tried on the contact as a plain lead, but at the stage sales set past MQL, where the
        sync and the rescore never give one (the account's bar is no sales signal); None
        when its account gives none."""
        stage = self.stages[side]
        account_id = self.account_of.get(result.contact_id)
        acc = self.results[side].get(account_id) if account_id is not None else None
        if stage is None or acc is None or not acc.mqa:
            return None
        model = self.models[side].model
        blocked = frozenset(f.name for f in model.fit.force if f.block_mql)
        current = result.lifecycle.current_stage
        owned = current if stage_rank(current) > stage_rank(MQL) else None  # SQL and on
        plain = dataclasses.replace(
            result,
            lifecycle=LifecycleDecision(
                owned, None, mql=False, mql_reason=None, recycled=result.lifecycle.recycled
            ),
        )
        out = apply_account_mql(contact, plain, acc, stage.ca, model.lifecycle, blocked)
        return out.lifecycle.mql_reason if out is not plain else None

    def label_of(self, contact_id: str) -> str:
        account_id = self.account_of.get(contact_id, "")
        return self.labels.get(account_id, account_id)

    def count(self, current: str | None, simulated: str | None) -> None:
        self.mqls[0] += by_account(current)
        self.mqls[1] += by_account(simulated)

    def summary(self) -> AccountSimulation:
        def threshold(side: int) -> float | None:
            section = self.models[side].model.accounts
            return float(section.mqa.threshold) if self.stages[side] and section else None

        out = AccountSimulation(threshold(0), threshold(1), account_mqls=list(self.mqls))
        cur_all, new_all = self.results
        for account_id in self.members_of:
            cur, new = cur_all.get(account_id), new_all.get(account_id)
            out.accounts += 1
            out.transitions[(_grade(cur), _grade(new))] += 1
            was, now = cur is not None and cur.mqa, new is not None and new.mqa
            out.current_mqas += was
            out.simulated_mqas += now
            if was != now:
                out.flips.append(
                    AccountFlip(
                        account_id,
                        self.labels.get(account_id, account_id),
                        cur.score if cur else 0.0,
                        _grade(cur),
                        new.score if new else 0.0,
                        _grade(new),
                        now,
                        new.mqa_reason if new is not None and now else None,
                    )
                )
        out.flips.sort(key=lambda f: (not f.gained, -f.simulated_score, f.label))
        return out


def _label(account_id: str, company: Company) -> str:
    """An account by name and domain: "Northwind Data (northwind-data.com)"."""
    name, domain = company.name, company.domain or None
    if name and domain:
        return f"{name} ({domain})"
    return name or domain or account_id


def _grade(result: AccountResult | None) -> str:
    return NO_ACCOUNT_GRADE if result is None else result.grade


def strip(result: ScoreResult, blocked: frozenset[str]) -> ScoreResult:
    """What `AccountSides.verdict` reads of a result, kept light while every account is
    scored: the reasons of MQL-blocking rules only."""
    return dataclasses.replace(
        result, reasons=tuple(r for r in result.reasons if r.rule in blocked)
    )
