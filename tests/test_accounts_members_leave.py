"""A member that leaves its account by leaving the CRM (merged into another contact, deleted)
takes its part out of the account at the next sync: the account is due, scored again without
it, and its other members' account values follow. Before, the account kept the member's
points and its member count until a full rescore (found by driving the sandboxes by hand)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from connector.ops.rescore import preview_rescore

from .conftest import NOW, Harness
from .test_sync_accounts import marketo_accounts

CRM = "hubspot"
ACME = "company:9001"


def _unchanged_by_a_full_rescore(h: Harness, crm: str, account_id: str) -> bool:
    """A full rescore's preview finds nothing to change on the account: the incremental sync
    left it as scoring everybody again would."""
    preview = preview_rescore(h.store, crm, h.pipeline.model, None, h.clock[0], sample=100)
    assert preview.accounts is not None
    return all(c.account_id != account_id for c in preview.accounts.sample)


def test_a_contact_merged_into_another_account_leaves_its_account(demo_accounts: Harness) -> None:
    h = demo_accounts
    assert h.pipeline.sync().status == "ok"
    before = h.store.account_score(CRM, ACME)
    assert before is not None and before.members == 6
    leaving = before.engaged_contacts[0]  # the most engaged member of Acme
    hooli = h.store.account_members(CRM, "company:9006")
    survivor = hooli[0].contact_id
    h.sb.merge(survivor, leaving)  # as a rep merges two records in HubSpot
    h.sb.clear_log()
    h.clock[0] = NOW + timedelta(minutes=15)
    summary = h.pipeline.sync()
    assert summary.status == "ok" and summary.merged == 1
    after = h.store.account_score(CRM, ACME)
    assert after is not None
    assert after.members == 5 and leaving not in after.engaged_contacts
    assert after.score < before.score
    assert h.store.accounts_due(CRM) == []  # scored this pass, nothing left for the next
    assert _unchanged_by_a_full_rescore(h, CRM, ACME)
    # Acme's other members show its new score in the CRM
    shown = {
        m.contact_id: h.sb.contact(m.contact_id).properties.get("leadscore_account_score")
        for m in h.store.account_members(CRM, ACME)
    }
    assert set(shown.values()) == {str(round(after.score))}, shown


def test_a_lead_deleted_in_marketo_leaves_its_account(tmp_path: Path) -> None:
    clock = [NOW]
    with marketo_accounts(tmp_path, clock) as (sb, pipeline):
        store = pipeline.store
        assert pipeline.sync().status == "ok"
        before = store.account_score("marketo", "company:ACC-9001")
        assert before is not None and before.members == 6
        leaving = before.engaged_contacts[0]
        sb.instance.advance(14 * 60)  # deleted a minute before the next sync
        sb.delete_lead(int(leaving))
        clock[0] = NOW + timedelta(minutes=15)
        summary = pipeline.sync()
        assert summary.status == "ok" and summary.archived == 1
        after = store.account_score("marketo", "company:ACC-9001")
        assert after is not None
        assert after.members == 5 and leaving not in after.engaged_contacts
        assert after.score < before.score
        assert store.accounts_due("marketo") == []
        written = {
            m.contact_id: sb.lead(int(m.contact_id)).values.get("accountScore__c")
            for m in store.account_members("marketo", "company:ACC-9001")
        }
        assert set(written.values()) == {round(after.score)}, written
        # the next sync reads the deletion again (its lookback): no news, no account scored
        clock[0] = NOW + timedelta(minutes=20)
        again = pipeline.sync()
        assert (again.status, again.accounts_scored, again.written) == ("ok", 0, 0)


def test_a_member_found_deleted_at_write_time_leaves_its_account_in_the_same_pass(
    demo_accounts: Harness,
) -> None:
    """The contact is deleted between the read and its write (404): its account, scored with
    it in this pass already, is scored again without it before the pass ends."""
    h = demo_accounts
    assert h.pipeline.sync().status == "ok"
    before = h.store.account_score(CRM, ACME)
    assert before is not None and before.members == 6
    leaving = before.engaged_contacts[-1]
    h.clock[0] = NOW + timedelta(minutes=15)
    h.sb.submit_form(leaving, "Request a demo", NOW + timedelta(minutes=5))
    deleted: list[str] = []

    def delete_before_the_write(where: str) -> None:
        if where == "write" and not deleted:
            h.sb.archive(leaving)
            deleted.append(leaving)

    h.pipeline.checkpoint = delete_before_the_write
    summary = h.pipeline.sync()
    h.pipeline.checkpoint = None
    assert summary.status == "ok" and summary.archived == 1 and deleted == [leaving]
    after = h.store.account_score(CRM, ACME)
    assert after is not None and after.members == 5
    assert leaving not in after.engaged_contacts
    assert h.store.accounts_due(CRM) == []
    assert _unchanged_by_a_full_rescore(h, CRM, ACME)


def test_a_member_deleted_in_hubspot_and_found_by_its_account_values_write_leaves(
    demo_accounts: Harness,
) -> None:
    """HubSpot shows a deleted contact no other way than a 404 on a write (search never
    returns it again). Here the write is of its account's new values (the company changed,
    the member was not pulled): the account is scored again without it in the same pass, and
    its other members get those values. Before, the account kept the member (found in
    review)."""
    from .test_sync_accounts_firmographics import edit_company, move_to

    h = demo_accounts
    assert h.pipeline.sync().status == "ok"
    before = h.store.account_score(CRM, ACME)
    assert before is not None and before.members == 6
    leaving = before.engaged_contacts[-1]
    move_to(h, 15)
    h.sb.archive(leaving)  # deleted in HubSpot: never pulled again
    edit_company(h, numberofemployees="12", industry="RETAIL", annualrevenue="1000000")
    summary = h.pipeline.sync()
    assert summary.status == "ok" and summary.archived == 1
    after = h.store.account_score(CRM, ACME)
    assert after is not None and after.members == 5 and leaving not in after.engaged_contacts
    assert h.store.accounts_due(CRM) == []
    assert _unchanged_by_a_full_rescore(h, CRM, ACME)
    shown = {
        m.contact_id: h.sb.contact(m.contact_id).properties.get("leadscore_account_score")
        for m in h.store.account_members(CRM, ACME)
    }
    assert set(shown.values()) == {str(round(after.score))}, shown
    move_to(h, 30)
    again = h.pipeline.sync()
    assert (again.accounts_scored, again.written) == (0, 0)
