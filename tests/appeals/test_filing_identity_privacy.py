"""Knowing a person's name and ID number plus controlling *some* phone is not being that person:
the online filing shows the record (popups, registered community) only to a phone already on the
resident's record, never adds a new phone to the record, and the status page shows such a filer
only the progress of their own filing."""

import re

import pytest
from django.urls import reverse

from appeals.models import Appeal
from appeals.services import appeal_file_by_phone
from communities import pii
from communities.models import Resident, ResidentPhone
from tests.appeals.test_resident_filing import _code_from
from tests.factories import CommunityFactory, PopupCaseFactory, ResidentFactory, make_id_number
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db

VICTIM_PHONE = "13800138000"
OTHER_PHONE = "13911112222"
NEUTRAL = "We show popups on record only to a phone number that is already registered to you."


def _verify(client, name, id_number, phone):
    response = client.post(reverse("appeals:file-identify"), {"name": name, "id_number": id_number, "phone": phone})
    assert response.status_code == 302, response.content.decode()[:2000]
    response = client.post(reverse("appeals:file-verify"), {"code": _code_from(None)})
    assert response.status_code == 302 and response.url == reverse("appeals:file-popup")


def _popup_step(client) -> str:
    page = client.get(reverse("appeals:file-popup")).content.decode()
    return page.split("<main", 1)[-1]


def _file_unlisted(client, popup_type="3", *, on_record=False):
    response = client.post(reverse("appeals:file-popup"), {"popup": "unlisted", "popup_type_claimed": popup_type,
                                                           "category": "correction"})
    assert response.status_code == 302, response.content.decode()[:3000]
    client.post(reverse("appeals:file-community"), {"action": "skip"})
    client.post(reverse("appeals:file-details"), {"description": "my popup", "action": "continue"})
    check = client.get(reverse("appeals:file-check")).content.decode()
    if not on_record:
        assert "Not listed in our records" not in check  # says nothing of what the records hold
    assert client.post(reverse("appeals:file-check")).status_code == 302
    return client.get(reverse("appeals:file-done"))


def test_someone_elses_phone_sees_no_popup_and_is_never_added_to_the_record(client, sms_outbox, resident_with_popup):
    # given a resident with popup 3 and an open appeal on it, phone 13800138000 on record
    resident, popup = resident_with_popup
    theirs = AppealFactory(resident=resident, popup=popup, popup_type_claimed=3,
                           contact_phone_hash=pii.phone_hash(VICTIM_PHONE))
    # when somebody who knows the name and ID number proves control of their own phone
    _verify(client, resident.name, resident.reveal_id_number(), OTHER_PHONE)
    page = _popup_step(client)
    # then no popup of the record is offered, only the neutral "tell us the number" path
    assert f'value="{popup.pk}"' not in page
    assert NEUTRAL in page
    assert "Our records show no active popup" not in page
    # nor the community on record
    community_page = client.get(reverse("appeals:file-community")).content.decode()
    assert resident.community.name not in community_page
    # and a popup id smuggled into the form is refused
    response = client.post(reverse("appeals:file-popup"), {"popup": str(popup.pk), "category": "correction"})
    assert response.status_code == 400
    # when they file anyway
    done = _file_unlisted(client)
    # then it is a separate appeal, kept apart from the record, with their phone only as contact
    mine = Appeal.objects.exclude(pk=theirs.pk).get()
    assert mine.popup is None and mine.popup_type_claimed == 3 and mine.filer_unconfirmed
    assert mine.contact_phone_hash == pii.phone_hash(OTHER_PHONE)
    assert mine.reference in done.content.decode() and theirs.reference not in done.content.decode()
    theirs.refresh_from_db()
    assert theirs.repeat_count == 0
    assert list(resident.phones.values_list("phone_hash", flat=True)) == [pii.phone_hash(VICTIM_PHONE)]
    assert not ResidentPhone.objects.filter(phone_hash=pii.phone_hash(OTHER_PHONE)).exists()


def test_a_second_filing_from_the_same_phone_adds_to_its_own_appeal(client, sms_outbox, resident_with_popup):
    resident, _popup = resident_with_popup
    _verify(client, resident.name, resident.reveal_id_number(), OTHER_PHONE)
    _file_unlisted(client)
    _verify(client, resident.name, resident.reveal_id_number(), OTHER_PHONE)
    done = _file_unlisted(client)
    appeal = Appeal.objects.get()
    assert appeal.repeat_count == 1 and "Added to your open appeal" in done.content.decode()


def test_the_resident_with_a_phone_on_record_sees_their_popups_and_never_joins_an_unconfirmed_filing(
        client, sms_outbox, resident_with_popup):
    resident, popup = resident_with_popup
    stranger = AppealFactory(resident=resident, popup=None, popup_type_claimed=4, filer_unconfirmed=True,
                             contact_phone_hash=pii.phone_hash(OTHER_PHONE))
    _verify(client, resident.name, resident.reveal_id_number(), VICTIM_PHONE)
    page = _popup_step(client)
    assert f'value="{popup.pk}"' in page and NEUTRAL not in page
    assert resident.community.name in client.get(reverse("appeals:file-community")).content.decode()
    # filing "not listed, number 4" does not land in the stranger's appeal (whose phone is not theirs)
    _file_unlisted(client, popup_type="4", on_record=True)
    own = Appeal.objects.exclude(pk=stranger.pk).get()
    assert not own.filer_unconfirmed and own.popup_type_claimed == 4
    stranger.refresh_from_db()
    assert stranger.repeat_count == 0


def test_unregistered_person_gets_the_same_page_and_no_phone_on_record(client, sms_outbox, db):
    # given a resident with a record (to compare with) and a person not registered at all
    registered = ResidentFactory(name="李四", community=CommunityFactory(), phone=VICTIM_PHONE)
    PopupCaseFactory(resident=registered, popup_type=3)
    _verify(client, registered.name, registered.reveal_id_number(), OTHER_PHONE)
    with_record = _popup_step(client)
    number = make_id_number()
    client.cookies.clear()
    _verify(client, "张三", number, "13700001111")
    without_record = _popup_step(client)
    # then the two pages say the same thing (nothing tells whether there is a record or a popup)
    strip = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert strip.sub("", with_record) == strip.sub("", without_record)
    # nobody is registered from what was typed: the name and ID number live on the appeal
    assert not Resident.objects.filter(id_hash=pii.id_hash(number)).exists()
    _file_unlisted(client)
    appeal = Appeal.objects.get(claimed_id_hash=pii.id_hash(number))
    assert appeal.resident is None and appeal.claimed_masked.startswith("张*")
    assert appeal.filer_unconfirmed and appeal.contact_phone_hash == pii.phone_hash("13700001111")


def test_status_page_shows_an_unconfirmed_filer_only_their_filings_progress(client, resident_with_popup):
    # given an appeal on the resident's popup, routed and closed, whose contact phone is not on record
    resident, popup = resident_with_popup
    community = CommunityFactory(name="隐私测试社区")
    appeal = AppealFactory(resident=resident, popup=popup, contact_phone_hash=pii.phone_hash(OTHER_PHONE),
                           routed_community=community, status=Appeal.Status.ROUTED)
    form = {"reference": appeal.reference, "id_number": resident.reveal_id_number()}
    # when the contact phone asks
    limited = client.post(reverse("appeals:status"), form | {"phone": OTHER_PHONE}).content.decode()
    # then it sees the stage, but not why the popup was raised nor the community
    assert "With the community" in limited
    assert "Why the popup was raised" not in limited
    assert community.name not in limited
    # while the resident's phone on record sees everything
    full = client.post(reverse("appeals:status"), form | {"phone": VICTIM_PHONE}).content.decode()
    assert "Why the popup was raised" in full and community.name in full
    # and the close reason and the appeal it was merged into stay hidden from the contact phone
    into = AppealFactory(resident=resident, popup=None, popup_type_claimed=3)
    Appeal.objects.filter(pk=appeal.pk).update(status=Appeal.Status.CLOSED, merged_into=into, outcome="merged",
                                              close_reason=f"Merged into {into.reference}")
    limited = client.post(reverse("appeals:status"), form | {"phone": OTHER_PHONE}).content.decode()
    assert "Your appeal is closed." in limited and into.reference not in limited


def test_phone_entry_keeps_the_call_back_phone_on_the_appeal_only(resident_with_popup, operator):
    resident, _popup = resident_with_popup
    appeal, _folded = appeal_file_by_phone(actor=operator, name=resident.name, id_number=resident.reveal_id_number(),
                                           phone=OTHER_PHONE, category="correction")
    assert appeal.contact_phone_hash == pii.phone_hash(OTHER_PHONE)
    assert resident.phones.count() == 1


def test_per_id_code_limit_still_applies_across_phones(client, settings, resident_with_popup):
    settings.APPEALS_RATE_LIMITS = {**settings.APPEALS_RATE_LIMITS, "code_id": "2/3600"}
    resident, _popup = resident_with_popup
    for phone in ("13911110001", "13911110002"):
        response = client.post(reverse("appeals:file-identify"), {
            "name": resident.name, "id_number": resident.reveal_id_number(), "phone": phone})
        assert response.status_code == 302
    response = client.post(reverse("appeals:file-identify"), {
        "name": resident.name, "id_number": resident.reveal_id_number(), "phone": "13911110003"})
    assert response.status_code == 429 and "too many attempts" in response.content.decode()
