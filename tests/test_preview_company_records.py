"""A rescore's preview counts company-record writes only where the CRM's records are written:
on Marketo the account values go on the leads, and the preview said "Would update 54
contact(s) and 12 company record(s)" where the applied rescore then wrote none (found running
`rescore --dry-run` against the Marketo sandbox)."""

from __future__ import annotations

from pathlib import Path

from connector.crm.base import WRITES_COMPANY_RECORDS
from connector.crm.hubspot import HubSpotAdapter
from connector.crm.marketo import MarketoAdapter
from connector.ops.rescore import preview_rescore

from .conftest import NOW
from .test_account_mql_reason_cleared import mqa_bar
from .test_sync_accounts import marketo_accounts


def test_the_crms_that_write_company_records_are_those_whose_adapter_can() -> None:
    adapters = {"hubspot": HubSpotAdapter, "marketo": MarketoAdapter}
    can = {crm for crm, cls in adapters.items() if callable(getattr(cls, "write_companies", None))}
    assert can == WRITES_COMPANY_RECORDS == {"hubspot"}


def test_a_marketo_rescore_preview_counts_no_company_record(tmp_path: Path) -> None:
    clock = [NOW]
    with marketo_accounts(tmp_path, clock) as (_sb, pipeline):
        assert pipeline.sync().status == "ok"
        changed = mqa_bar(tmp_path, 160)
        preview = preview_rescore(pipeline.store, "marketo", changed, None, NOW, sample=50)
        assert preview.accounts is not None
        assert preview.accounts.stopped_mqa > 0  # the accounts do change
        assert preview.accounts.companies_to_write == 0
