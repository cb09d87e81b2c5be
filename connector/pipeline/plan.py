"""Plan the write-back: what the CRM should show for a score (`desired_properties`), what
differs from what it holds (our last write, or what it showed when read: drift), lifecycle
stages it already shows left out, blank company fields filled from enrichment. The functions
are pure; `Planner` applies them to a scored chunk with this run's drift."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connector.crm.base import CHECKED_PROPERTIES, CONTACT_ACCOUNT_PROPERTIES
from connector.pipeline.stage import Stage, iso
from connector.pipeline.summary import PlannedWrite, SyncSummary
from connector.scoring.accounts import by_account
from connector.types import Contact, Enrichment, ScoreResult, WriteBack, crm_score

if TYPE_CHECKING:
    from connector.pipeline.core import Pipeline

COMPANY_FIELDS = ("company_name", "company_industry", "company_country")


def desired_properties(result: ScoreResult) -> dict[str, str]:
    """What the CRM should show for this result, by our property names (scored_at excluded)."""
    return _desired(result, result.top_reasons())


def _desired(result: ScoreResult, reasons: str | None) -> dict[str, str]:
    """`desired_properties`, without "reasons" when `reasons` is None."""
    props = {
        "score": crm_score(result.score),
        "grade": result.grade,
        "fit_score": crm_score(result.fit_points),
    }
    if reasons is not None:
        props["reasons"] = reasons
    props["model_version"] = result.model_version
    props["profile_mismatch"] = "true" if result.profile_mismatch else "false"
    if result.priority:  # "" on a score stored before priority labels: nothing to write
        props["priority"] = result.priority
    if result.lifecycle.mql_reason:
        props["mql_reason"] = result.lifecycle.mql_reason
    if result.lifecycle.target_stage:
        props["lifecycle_stage"] = result.lifecycle.target_stage
    return props


def same_value(last: str, shown: str) -> bool:
    """Does the CRM show what we wrote? Numbers compare by value ("42" and "42.0")."""
    if last == shown:
        return True
    try:
        return float(last) == float(shown)
    except ValueError:
        return False


def diff_properties(desired: dict[str, str], written: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in desired.items() if written.get(k) != v}


def planned_changes(
    contact: Contact, result: ScoreResult, written: Mapping[str, str]
) -> dict[str, str]:
    """The properties a sync sends for one contact (scored_at excluded): the desired values
    that differ from the last write; a lifecycle stage the CRM already shows is not sent.
    Empty when there is nothing to write. (`leadscore rescore --dry-run` counts with this.)"""
    desired = desired_properties(result)
    _drop_stage_shown(contact, desired, written)
    _clear_account_reason(desired, written)
    return diff_properties(desired, dict(written))


def write_changes(
    contact: Contact,
    result: ScoreResult,
    written: Mapping[str, str],
    enrichment: Enrichment | None,
    *,
    company_fields: bool,
) -> dict[str, str]:
    """What a write of this contact sends (`scored_at` aside): the score properties that differ
    from the last write (`planned_changes`) and, with `company_fields`, the blank company
    fields its enrichment can fill. Empty: nothing to write. The sync, the dead-letter retry
    and the rescore's preview all plan with this."""
    changes = planned_changes(contact, result, written)
    if company_fields:
        changes.update(company_changes(contact, enrichment, written))
    return changes


def company_changes(
    contact: Contact, enrichment: Enrichment | None, written: Mapping[str, str]
) -> dict[str, str]:
    """The blank company fields the enrichment fills, where they differ from the last write."""
    return diff_properties(company_fill(contact, enrichment), dict(written))


def needs_write(contact: Contact, result: ScoreResult, written: Mapping[str, str]) -> bool:
    """`bool(planned_changes(...))`, cheaper: the reasons text (the costly property) is made
    only when every other property is already what the CRM shows. A full rescore asks this
    of every contact; after a model change its version alone answers."""
    desired = _desired(result, None)
    _drop_stage_shown(contact, desired, written)
    _clear_account_reason(desired, written)
    if any(written.get(k) != v for k, v in desired.items()):
        return True
    return written.get("reasons") != result.top_reasons()


def _drop_stage_shown(
    contact: Contact, desired: dict[str, str], written: Mapping[str, str]
) -> None:
    if (
        "lifecycle_stage" in desired
        and desired["lifecycle_stage"] == (contact.lifecycle_stage or "")
        and "lifecycle_stage" not in written
    ):
        desired.pop("lifecycle_stage")  # the CRM already shows it


def _clear_account_reason(desired: dict[str, str], written: Mapping[str, str]) -> None:
    """An MQL reason its account gave (`account MQA: …`) lasts as long as the account is an
    MQA: once the result has none, the one written is cleared (written blank). A reason of
    the contact's own (`threshold`, a hand-raiser) stays, as its MQL stage does."""
    if "mql_reason" not in desired and by_account(written.get("mql_reason")):
        desired["mql_reason"] = ""


def _drifted(key: str, last: Mapping[str, str], shown: str) -> bool:
    """Whether the CRM shows other than our last write of `key`. An account value on a
    contact we never wrote one to (it has no account) is no value of ours: drift, cleared."""
    if key in last:
        return not same_value(last[key], shown)
    return bool(shown) and key in CONTACT_ACCOUNT_PROPERTIES


def company_fill(contact: Contact, enrichment: Enrichment | None) -> dict[str, str]:
    """Company facts for the CRM fields that are still blank. Never overwrites what a person
    (or a form) entered; free and disposable mail never get a company."""
    company = enrichment.company if enrichment is not None else None
    if company is None or enrichment is None or enrichment.email_kind != "corporate":
        return {}
    current = {
        "company_name": contact.company_name,
        "company_industry": contact.properties.get("industry"),
        "company_country": contact.country,
    }
    offered = {
        "company_name": company.name,
        "company_industry": company.industry,
        "company_country": company.country,
    }
    return {k: str(v) for k, v in offered.items() if v and not current.get(k)}


class Planner(Stage):
    """The plan stage: this run's drift (noted as pages are stored), the writes a scored chunk
    needs, and which of them repair drift (counted when the write succeeds)."""

    def __init__(self, pipeline: Pipeline) -> None:
        super().__init__(pipeline)
        # contacts pulled this run whose CRM shows other values than our last write (a
        # hand edit, a workflow, an emptied property): {id: {property: value shown}}
        self.drift: dict[str, dict[str, str]] = {}
        self.repairing: set[str] = set()
        self.done: list[str] = []  # the last chunk's contacts with nothing to write

    def note_drift(self, contacts: Sequence[Contact]) -> None:
        """Compare the score properties the CRM shows (read with the contacts) with our last
        write: what differs is remembered for this run's plan, which writes it again where the
        score still wants our value. A contact pulled because our own write changed it shows
        what we wrote: no drift."""
        read = [c for c in contacts if c.crm_values is not None]
        if not read:
            return
        written = self.store.get_written_many(self.crm, [c.id for c in read])
        # the account's values on the contact too, where the CRM read them (accounts on)
        checked = (
            CHECKED_PROPERTIES + CONTACT_ACCOUNT_PROPERTIES + self.pipeline.named.checked_keys()
        )
        for c in read:
            last = written.get(c.id, {})
            shown = c.crm_values or {}
            drift = {k: shown[k] for k in checked if k in shown and _drifted(k, last, shown[k])}
            if drift:
                self.drift[c.id] = drift
            else:
                self.drift.pop(c.id, None)

    def repaired(self, contact_id: str) -> int:
        """1 when this successful write repaired drift (counted once), else 0."""
        if contact_id in self.repairing:
            self.repairing.discard(contact_id)
            return 1
        return 0

    def changes_for(
        self,
        contact: Contact,
        result: ScoreResult,
        written: Mapping[str, str],
        enrichments: Mapping[str, Enrichment] | None,
    ) -> dict[str, str]:
        """`write_changes` with this pipeline's `write_company_fields`, the contact's
        enrichment looked up by e-mail in `enrichments` (see `enrichments_for`)."""
        company_fields = self.options.write_company_fields and enrichments is not None
        enrichment = (
            enrichments.get((contact.email or "").lower()) if enrichments is not None else None
        )
        changes = write_changes(contact, result, written, enrichment, company_fields=company_fields)
        # what the post-score stages contribute (the account's values, the named scores),
        # diff-only (never written: ""), in the contact's one write
        for stage in self.pipeline.post_score:
            contributed: Mapping[str, Mapping[str, str]] | None = getattr(
                stage, "contact_props", None
            )
            if not contributed:
                continue
            for k, v in contributed.get(contact.id, {}).items():
                if written.get(k, "") != v:
                    changes[k] = v
        return changes

    def plan(
        self,
        pairs: Sequence[tuple[Contact, Any]],
        results: Sequence[ScoreResult],
        now: datetime,
        summary: SyncSummary,
        enrichments: Mapping[str, Enrichment] | None = None,
    ) -> tuple[list[WriteBack], dict[str, ScoreResult]]:
        written = self.store.get_written_many(self.crm, [c.id for c, _ in pairs])
        writes: list[WriteBack] = []
        meta: dict[str, ScoreResult] = {}
        done: list[str] = []
        # `pairs` come from iter_contacts_with_events: archived and merged-away contacts are
        # already left out, so every contact here is writable
        for (contact, _), result in zip(pairs, results, strict=True):
            last = written.get(contact.id, {})
            drift = self.drift.pop(contact.id, None)
            # where the CRM was read and shows other values, diff with what it shows
            shown = {**last, **drift} if drift else last
            changes = self.pipeline.changes_for(contact, result, shown, enrichments)
            if not changes:
                summary.unchanged += 1
                done.append(contact.id)
                continue
            if drift and any(k in changes for k in drift):
                if self.options.dry_run:
                    summary.repaired += 1  # would be
                else:
                    self.repairing.add(contact.id)  # counted when the write succeeds
            changes["scored_at"] = iso(now)
            writes.append(WriteBack(contact.id, changes))
            meta[contact.id] = result
        summary.to_write += len(writes)
        self.done = done
        return writes, meta

    def keep_planned(
        self,
        pairs: Sequence[tuple[Contact, Any]],
        writes: Sequence[WriteBack],
        results: Mapping[str, ScoreResult],
        summary: SyncSummary,
    ) -> None:
        """The dry run's first `preview_rows` writes in detail (before, after, changes)."""
        room = self.options.preview_rows - len(summary.planned)
        if room <= 0 or not writes:
            return
        chosen = list(writes[:room])
        contacts = {c.id: c for c, _ in pairs}
        written = self.store.get_written_many(self.crm, [w.contact_id for w in chosen])
        for w in chosen:
            contact = contacts[w.contact_id]
            summary.planned.append(
                PlannedWrite(
                    w.contact_id,
                    contact.email,
                    contact.lifecycle_stage,
                    dict(written.get(w.contact_id, {})),
                    desired_properties(results[w.contact_id]),
                    {k: v for k, v in w.properties.items() if k != "scored_at"},
                )
            )
