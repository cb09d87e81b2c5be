"""The instance's lead fields: describe (cached), and the startup check that every configured
field exists (Marketo fields are created in the admin UI, not by us)."""

from __future__ import annotations

from connector.crm.base import CHECKED_PROPERTIES, CONTACT_ACCOUNT_PROPERTIES
from connector.crm.marketo.calls import MarketoCalls, log
from connector.crm.marketo.config import (
    ACCOUNT_FIELDS,
    PROFILE_FIELDS,
    FieldInfo,
    named_field_map,
)
from connector.errors import MissingPropertiesError


class FieldsMixin(MarketoCalls):
    """describe, check_properties / ensure_properties and the field lists."""

    # -- fields ----------------------------------------------------------------------------
    def describe(self, refresh: bool = False) -> dict[str, FieldInfo]:
        """The instance's lead fields by REST name (cached)."""
        if self._fields is None or refresh:
            data = self._call("leads.describe", "GET", "/rest/v1/leads/describe.json")
            fields: dict[str, FieldInfo] = {}
            for item in data.get("result") or []:
                rest = item.get("rest") if isinstance(item, dict) else None
                if not isinstance(rest, dict) or not rest.get("name"):
                    continue
                name = str(rest["name"])
                fields[name] = FieldInfo(
                    name, str(item.get("dataType", "string")), bool(rest.get("readOnly"))
                )
            self._fields = fields
        return self._fields

    def _write_fields(self) -> dict[str, str]:
        return {
            ours: f
            for ours, f in self.field_map().items()
            if f and (self.accounts or ours not in ACCOUNT_FIELDS)
        }

    def check_properties(self) -> None:
        fields = self.describe(refresh=True)
        missing: list[str] = []
        read_only: list[str] = []
        for ours, fname in sorted(self._write_fields().items()):
            info = fields.get(fname)
            if info is None:
                missing.append(f"{fname} (for {ours})")
            elif info.read_only:
                read_only.append(f"{fname} (for {ours})")
        status = self.config.status_field
        if status and status not in fields and f"{status} (for lead status)" not in missing:
            missing.append(f"{status} (for lead status)")
        problems: list[str] = []
        if missing:
            problems.append("the Marketo instance lacks lead fields " + ", ".join(missing))
        if read_only:
            problems.append("these lead fields are read-only: " + ", ".join(read_only))
        if problems:
            raise MissingPropertiesError(
                "; ".join(problems)
                + ". Marketo has no REST call to create lead fields: create them in Admin > "
                "Field Management, or map ours onto existing fields with "
                'LEADSCORE_MARKETO_FIELD_MAP (JSON, e.g. {"grade": "myGrade__c"}; "" skips one)',
                missing + read_only,
                "create them in Admin > Field Management (or map them with "
                "LEADSCORE_MARKETO_FIELD_MAP)",
            )

    def ensure_properties(self) -> list[str]:
        """Marketo lead fields cannot be created through the REST API, so nothing is created:
        this checks that the mapped fields exist (ConfigError naming the missing ones, with
        what to do) and returns []."""
        log.info(
            "Marketo lead fields cannot be created over REST; checking the mapped fields exist"
        )
        self.check_properties()
        return []

    # -- leads -----------------------------------------------------------------------------
    def _read_fields(self) -> list[str]:
        names = [*PROFILE_FIELDS, "createdAt", "updatedAt"]
        for extra in (self.config.stage_field, self.config.status_field):
            if extra and extra not in names:
                names.append(extra)
        company = self._company_field()
        if company:
            names.append(company)
        return names

    def _company_field(self) -> str | None:
        """`externalCompanyId`, the lead's company record, with accounts on where the instance
        has it: read with the leads and watched for changes (a lead moved to another company
        by that field alone moves to that account)."""
        if self.accounts and "externalCompanyId" in self.describe():
            return "externalCompanyId"
        return None

    def _checked_fields(self) -> dict[str, str]:
        """Our score properties mapped onto this instance: Marketo field → our name (with
        accounts on, the account's values on the lead too). Read with the leads and watched
        for changes, so a hand edit is seen and written again."""
        fmap = self.field_map()
        named = [k for k in named_field_map(self.named_scores) if fmap.get(k)]
        account = CONTACT_ACCOUNT_PROPERTIES if self.accounts else ()
        return {fmap[p]: p for p in (*CHECKED_PROPERTIES, *account, *named) if fmap.get(p)}
