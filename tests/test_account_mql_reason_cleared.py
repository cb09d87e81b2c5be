"""The MQL reason an MQA gives its contacts (`account MQA: …`) lasts as long as the account is
an MQA: a model under which the account is none any more clears it on the contact (written
blank), while the contact keeps its MQL stage and a reason of its own stays. Before, the CRM
kept `account MQA: company:9006 (score 92 ≥ 60 at an MQA)` under a model with another bar
and no MQA (found rolling out a model by hand)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from connector.model.loader import LoadedModel, load_model
from connector.ops.rescore import apply_rescore
from connector.scoring.accounts import by_account

from .conftest import NOW, Harness, shipped_model_variant


def mqa_bar(tmp_path: Path, threshold: int) -> LoadedModel:
    """The shipped model with the MQA bar at `threshold`."""

    def edit(doc: dict[str, Any]) -> None:
        doc["accounts"]["mqa"]["threshold"] = threshold

    return load_model(shipped_model_variant(tmp_path, f"2026.12-mqa{threshold}", edit))


def test_an_account_mql_reason_goes_when_the_account_stops_being_an_mqa(
    demo_accounts: Harness, tmp_path: Path
) -> None:
    h = demo_accounts
    assert h.pipeline.sync().status == "ok"
    by_mqa = {
        cid: props["leadscore_mql_reason"]
        for cid in (c.id for c in h.store.iter_contacts("hubspot"))
        if by_account((props := h.sb.contact(cid).properties).get("leadscore_mql_reason"))
    }
    own = {
        cid: props["leadscore_mql_reason"]
        for cid in (c.id for c in h.store.iter_contacts("hubspot"))
        if (props := h.sb.contact(cid).properties).get("leadscore_mql_reason") and cid not in by_mqa
    }
    assert by_mqa and own
    h.clock[0] = NOW + timedelta(minutes=15)
    applied = apply_rescore(h.pipeline, mqa_bar(tmp_path, 1000))  # no account is an MQA now
    assert applied.rescore is not None and applied.rescore.status == "ok"
    assert h.store.count_mqas("hubspot") == 0
    for cid in by_mqa:
        props = h.sb.contact(cid).properties
        assert props["leadscore_mql_reason"] == "", cid
        assert props["lifecyclestage"] == "marketingqualifiedlead", cid  # stages stay
    for cid, reason in own.items():  # the contacts' own reasons stay
        assert h.sb.contact(cid).properties["leadscore_mql_reason"] == reason, cid
    # written once: the next sync writes nothing more
    h.clock[0] = NOW + timedelta(minutes=30)
    again = h.pipeline.sync()
    assert (again.status, again.written) == ("ok", 0)
