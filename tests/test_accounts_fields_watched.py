"""The account's fields on a contact are watched like our score properties: a hand edit of
`leadscore_account_score` (HubSpot) or `accountScore__c` (Marketo) is written back at the
next sync (counted as repaired), and a Marketo lead moved to another company record by its
`externalCompanyId` alone moves to that account. Before, both went unseen (found driving the
sandboxes with the official SDK and marketorestpython)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from .conftest import NOW, Harness
from .test_sync_accounts import marketo_accounts


def test_a_hand_edit_of_the_account_score_on_a_hubspot_contact_is_repaired(
    demo_accounts: Harness,
) -> None:
    h = demo_accounts
    assert h.pipeline.sync().status == "ok"
    acme = h.store.account_score("hubspot", "company:9001")
    assert acme is not None
    member = acme.engaged_contacts[0]
    shown = h.sb.contact(member).properties
    assert shown["leadscore_account_score"] == str(round(acme.score))
    h.sb.set_property(member, "leadscore_account_score", "999")  # a rep's edit
    h.sb.set_property(member, "leadscore_account_grade", "D")
    assert acme.grade != "D"
    h.sb.clear_log()
    h.clock[0] = NOW + timedelta(minutes=15)
    summary = h.pipeline.sync()
    assert summary.status == "ok" and summary.repaired == 1 and summary.written == 1
    shown = h.sb.contact(member).properties
    assert shown["leadscore_account_score"] == str(round(acme.score))
    assert shown["leadscore_account_grade"] == acme.grade
    # and the next sync leaves it: nothing drifted, nothing written
    h.clock[0] = NOW + timedelta(minutes=30)
    again = h.pipeline.sync()
    assert (again.repaired, again.written) == (0, 0)


def test_a_hand_edit_of_the_account_score_on_a_marketo_lead_is_repaired(tmp_path: Path) -> None:
    clock = [NOW]
    with marketo_accounts(tmp_path, clock) as (sb, pipeline):
        store = pipeline.store
        assert pipeline.sync().status == "ok"
        acme = store.account_score("marketo", "company:ACC-9001")
        assert acme is not None
        lead = int(acme.engaged_contacts[0])
        assert sb.lead(lead).values["accountScore__c"] == round(acme.score)
        sb.set_field(lead, "accountScore__c", 999)
        clock[0] = NOW + timedelta(minutes=15)
        summary = pipeline.sync()
        assert summary.status == "ok" and summary.repaired == 1
        assert sb.lead(lead).values["accountScore__c"] == round(acme.score)


def test_a_marketo_lead_moved_by_its_company_record_id_moves_to_that_account(
    tmp_path: Path,
) -> None:
    clock = [NOW]
    with marketo_accounts(tmp_path, clock) as (sb, pipeline):
        store = pipeline.store
        assert pipeline.sync().status == "ok"
        clock[0] = NOW + timedelta(hours=1)
        assert pipeline.sync().status == "ok"  # our own writes read back: settled
        hooli = store.account_score("marketo", "company:ACC-9006")
        assert hooli is not None and "121" in {
            m.contact_id for m in store.account_members("marketo", "company:ACC-9006")
        }
        sb.instance.advance(2 * 3600)  # two hours on, past the last sync's lookback
        sb.set_field(121, "externalCompanyId", "ACC-9002")  # Lucas moves to Initech
        clock[0] = NOW + timedelta(hours=3)
        summary = pipeline.sync()
        assert summary.status == "ok"
        link = store.contact_accounts_many("marketo", ["121"])["121"]
        assert link.account_id == "company:ACC-9002"
        after = store.account_score("marketo", "company:ACC-9006")
        assert after is not None and after.members == hooli.members - 1
        initech = store.account_score("marketo", "company:ACC-9002")
        assert initech is not None
        assert sb.lead(121).values["accountScore__c"] == round(initech.score)


def test_an_account_score_typed_on_a_contact_with_no_account_is_cleared(
    demo_accounts: Harness,
) -> None:
    """A contact with no account (free mail) shows no account values; one typed there by hand
    is cleared at the next sync (written blank, counted repaired), as a contact that leaves its
    account has them cleared."""
    h = demo_accounts
    assert h.pipeline.sync().status == "ok"
    free = next(
        c.id
        for c in h.store.iter_contacts("hubspot")
        if (c.email or "").endswith("@gmail.com")
        and not h.store.contact_accounts_many("hubspot", [c.id])
    )
    assert h.sb.contact(free).properties.get("leadscore_account_score") in (None, "")
    h.sb.set_property(free, "leadscore_account_score", "999")
    h.clock[0] = NOW + timedelta(minutes=15)
    summary = h.pipeline.sync()
    assert summary.status == "ok" and summary.repaired == 1
    assert h.sb.contact(free).properties.get("leadscore_account_score") in (None, "")
    h.clock[0] = NOW + timedelta(minutes=30)
    again = h.pipeline.sync()
    assert (again.repaired, again.written) == (0, 0)
