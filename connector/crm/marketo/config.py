"""What the Marketo adapter declares and how it is configured: our property names mapped onto
Marketo fields (contacts and accounts), stage values and statuses, activity type names, and
:class:`MarketoConfig`.

Every field declaration lives here; `fields.py` describes and checks them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from connector.crm.base import STAGE
from connector.types import MQL, SQL

# our property name -> Marketo REST field name ("" = not written)
DEFAULT_FIELD_MAP: dict[str, str] = {
    "score": "leadScore",
    "grade": "leadGrade__c",
    "fit_score": "",  # the demo instance has no fit-points field; map one to write it
    "reasons": "leadScoreReasons__c",
    "model_version": "leadScoreModel__c",
    "scored_at": "leadScoredAt__c",
    "mql_reason": "mqlReason__c",
    "profile_mismatch": "profileMismatch__c",
    "priority": "leadPriority__c",
    STAGE: "leadStatus",
    # account scoring (issue 21): the account's values on each lead (most instances cannot
    # write company records); checked only when account scoring is on
    "account_score": "accountScore__c",
    "account_grade": "accountGrade__c",
}
ACCOUNT_FIELDS = frozenset({"account_score", "account_grade"})
NAMED_SUFFIXES = ("score", "grade", "reasons", "priority")


def named_field_map(names: Sequence[str]) -> dict[str, str]:
    """The default fields of named scores (issue 23): `services_score` → `servicesScore__c`,
    `product_a_grade` → `productAGrade__c` (camelCase, like the account fields); override or
    skip ("") each with LEADSCORE_MARKETO_FIELD_MAP."""
    out: dict[str, str] = {}
    for n in names:
        head, *rest = n.split("_")
        camel = head + "".join(p[:1].upper() + p[1:] for p in rest)
        for suffix in NAMED_SUFFIXES:
            out[f"{n}_{suffix}"] = f"{camel}{suffix.capitalize()}__c"
    return out


COMPANY_FIELDS_READ = "id,externalCompanyId,company,industry,numberOfEmployees,annualRevenue," + (
    "billingCountry,website"
)
# our lifecycle stage -> the status value written to the stage field
DEFAULT_STAGE_VALUES: dict[str, str] = {
    "subscriber": "Subscriber",
    "lead": "Open",
    MQL: "MQL",
    SQL: "SQL",
    "opportunity": "Opportunity",
    "customer": "Customer",
}
# status value read from the stage field -> our lifecycle stage (case-insensitive). Values
# that are not here (e.g. "Disqualified") read as "other": a stage scoring never touches.
DEFAULT_STATUS_STAGES: dict[str, str] = {
    **{value: stage for stage, value in DEFAULT_STAGE_VALUES.items()},
    "New": "lead",
    "Nurture": "lead",
    "Recycled": "lead",
    "Sales Accepted": SQL,
    "Connected": SQL,
    "Qualified": SQL,
}
# Marketo activity type name -> our canonical event type
DEFAULT_ACTIVITY_TYPES: dict[str, str] = {
    "Visit Webpage": "page_view",
    "Fill Out Form": "form_submit",
    "Email Delivered": "email_delivered",
    "Email Bounced": "email_bounce",
    "Unsubscribe Email": "email_unsubscribe",
    "Open Email": "email_open",
    "Click Email": "email_click",
    "Webinar Attended": "webinar_attended",
    "Webinar Registered": "webinar_registered",
}
PROFILE_FIELDS: tuple[str, ...] = (
    "email",
    "firstName",
    "lastName",
    "title",
    "company",
    "country",
)


@dataclass(frozen=True)
class MarketoConfig:
    """How our properties and stages map onto one Marketo instance."""

    field_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELD_MAP))
    stage_values: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_STAGE_VALUES))
    status_stages: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_STATUS_STAGES))
    activity_types: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIVITY_TYPES))
    status_field: str = "leadStatus"  # read into Contact.lead_status
    backfill_days: float = 365.0  # first run: read changes and activities this far back

    @classmethod
    def with_overrides(
        cls,
        *,
        field_map: Mapping[str, str] | None = None,
        stage_values: Mapping[str, str] | None = None,
        status_stages: Mapping[str, str] | None = None,
        activity_types: Mapping[str, str] | None = None,
        status_field: str | None = None,
        backfill_days: float | None = None,
    ) -> MarketoConfig:
        """Defaults merged with overrides (an override value "" removes a default entry)."""

        def merged(base: Mapping[str, str], over: Mapping[str, str] | None) -> dict[str, str]:
            out = dict(base)
            for k, v in (over or {}).items():
                out[k] = v
            return out

        return cls(
            field_map=merged(DEFAULT_FIELD_MAP, field_map),
            stage_values={k: v for k, v in merged(DEFAULT_STAGE_VALUES, stage_values).items() if v},
            status_stages={
                k: v for k, v in merged(DEFAULT_STATUS_STAGES, status_stages).items() if v
            },
            activity_types={
                k: v for k, v in merged(DEFAULT_ACTIVITY_TYPES, activity_types).items() if v
            },
            status_field=status_field or "leadStatus",
            backfill_days=365.0 if backfill_days is None else backfill_days,
        )

    @property
    def stage_field(self) -> str:
        return self.field_map.get(STAGE, "") or ""


@dataclass(frozen=True)
class FieldInfo:
    name: str
    data_type: str
    read_only: bool
