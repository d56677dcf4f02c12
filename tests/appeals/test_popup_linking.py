"""Every channel links an appeal to the resident's popup when the claimed number names exactly one
open popup, so a call about a popup already appealed online joins that appeal; an operator can
link an unlinked ticket by hand (refused, with a merge suggestion, when another appeal holds it)."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from appeals.models import Appeal, AppealEvent
from appeals.services import appeal_file, appeal_file_by_phone
from communities.models import User
from tests.factories import PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def test_a_call_about_a_popup_appealed_online_joins_that_appeal(resident_with_popup, operator):
    # given an online appeal on the resident's popup 3
    resident, popup = resident_with_popup
    online, _ = appeal_file(resident=resident, popup=popup, category="correction", contact_phone="13800138000")
    # when the resident calls 12345 and the operator notes "popup 3"
    by_phone, folded = appeal_file_by_phone(actor=operator, name=resident.name, id_number=resident.reveal_id_number(),
                                            phone="13800138000", category="emergency_medical", popup_type_claimed=3)
    # then the call is added to the online appeal (one ticket, the community's decision lifts it)
    assert folded and by_phone.pk == online.pk
    online.refresh_from_db()
    assert online.repeat_count == 1 and online.priority == Appeal.Priority.EMERGENCY
    assert Appeal.objects.count() == 1


def test_a_phone_appeal_without_an_earlier_one_is_linked_to_the_sole_popup_of_that_number(resident_with_popup,
                                                                                          operator):
    resident, popup = resident_with_popup
    appeal, folded = appeal_file_by_phone(actor=operator, name=resident.name, id_number=resident.reveal_id_number(),
                                          phone="13800138000", category="correction", popup_type_claimed=3)
    assert not folded and appeal.popup == popup
    assert appeal.events.get(kind=AppealEvent.Kind.FILED).data["popup_linked"] == "by_type"


def test_two_open_popups_of_the_claimed_number_are_not_guessed(resident_with_popup, operator):
    resident, _popup = resident_with_popup
    PopupCaseFactory(resident=resident, popup_type=3, dedupe_key="second cause")
    appeal, _ = appeal_file_by_phone(actor=operator, name=resident.name, id_number=resident.reveal_id_number(),
                                     phone="13800138000", category="correction", popup_type_claimed=3)
    assert appeal.popup is None and appeal.popup_type_claimed == 3


def test_an_earlier_unlisted_appeal_is_linked_when_the_popup_is_named(resident_with_popup):
    # given an appeal for "a popup you don't show", number 3, filed before the popup was known
    resident, popup = resident_with_popup
    earlier = AppealFactory(resident=resident, popup=None, popup_type_claimed=3)
    # when the resident appeals the popup itself
    appeal, folded = appeal_file(resident=resident, popup=popup, category="correction")
    # then it joins the earlier appeal, which now holds the popup (internal history event)
    assert folded and appeal.pk == earlier.pk
    earlier.refresh_from_db()
    assert earlier.popup == popup
    linked = earlier.events.get(kind=AppealEvent.Kind.POPUP_LINKED)
    assert not linked.public and linked.data["popup"] == popup.pk


def test_open311_keeps_the_popup_number_unlinked_and_refuses_an_unknown_one(client, resident_with_popup):
    resident, popup = resident_with_popup
    key = Token.objects.create(user=UserFactory(role=User.Role.INTEGRATION)).key
    data = {"api_key": key, "service_code": "correction", "last_name": resident.name[0], "first_name": resident.name[1:],
            "phone": "13600009999", "attribute[id_number]": resident.reveal_id_number(),
            "address_string": "朝阳区望京西园三区"}
    response = client.post("/open311/v2/requests.json", data | {"attribute[popup_type]": "99"})
    assert response.status_code == 400
    assert "attribute[popup_type] must be a popup number from 1 to 5" in response.json()[0]["description"]
    assert not Appeal.objects.exists()
    response = client.post("/open311/v2/requests.json", data | {"attribute[popup_type]": "3"})
    assert response.status_code == 201
    appeal = Appeal.objects.get(reference=response.json()[0]["service_request_id"])
    # an Open311 client proves nothing about the person: the number stays the filer's words, an
    # operator who checks the caller links the popup
    assert appeal.popup is None and appeal.popup_type_claimed == 3 and appeal.filer_unconfirmed
    assert popup.appeals.count() == 0
    assert resident.phones.count() == 1  # the client's phone stays on the appeal


def test_phone_entry_form_takes_the_popup_number_and_the_relief_fields(client, resident_with_popup, operator):
    import datetime as dt

    from django.utils import timezone

    resident, popup = resident_with_popup
    client.force_login(operator)
    since = timezone.localdate() - dt.timedelta(days=40)
    response = client.post(reverse("appeals:phone-entry"), {
        "name": resident.name, "id_number": resident.reveal_id_number(), "phone": "13800138000",
        "category": "stranded", "popup_type_claimed": "3", "currently_outside_city": "on",
        "outside_since": since.isoformat(), "wishes_to_return": "on", "call_outcome": "reached"})
    appeal = Appeal.objects.get()
    assert response.status_code == 302
    assert appeal.popup == popup
    assert appeal.currently_outside_city and appeal.wishes_to_return and appeal.outside_since == since
    assert "popup_type_claimed" in client.get(reverse("appeals:phone-entry")).content.decode()


def test_operator_links_an_unlinked_ticket_from_the_ticket_page(client, resident_with_popup, operator):
    # given a ticket with no popup (two popups of number 3 at filing, say)
    resident, popup = resident_with_popup
    appeal = AppealFactory(resident=resident, popup=None, popup_type_claimed=1)
    client.force_login(operator)
    page = client.get(reverse("appeals:ticket", args=[appeal.pk])).content.decode()
    assert 'id="link-popup"' in page and f'value="{popup.pk}"' in page
    # when the operator links it
    response = client.post(reverse("appeals:ticket-action", args=[appeal.pk, "link-popup"]), {"popup": popup.pk})
    # then the ticket holds the popup, with an internal event in its history
    assert response.status_code == 302
    appeal.refresh_from_db()
    assert appeal.popup == popup and appeal.popup_type_claimed == 3
    event = appeal.events.get(kind=AppealEvent.Kind.POPUP_LINKED)
    assert event.actor == operator and event.data["claimed"] == 1 and not event.public


def test_linking_a_popup_another_open_appeal_holds_is_refused_with_a_merge_suggestion(client, resident_with_popup,
                                                                                     operator):
    resident, popup = resident_with_popup
    holder = AppealFactory(resident=resident, popup=popup, popup_type_claimed=3)
    appeal = AppealFactory(resident=resident, popup=None, popup_type_claimed=3)
    client.force_login(operator)
    page = client.get(reverse("appeals:ticket", args=[appeal.pk])).content.decode()
    assert f"already in appeal {holder.reference}" in page
    response = client.post(reverse("appeals:ticket-action", args=[appeal.pk, "link-popup"]), {"popup": popup.pk},
                           follow=True)
    assert f"Merge this appeal into {holder.reference} instead" in response.content.decode()
    appeal.refresh_from_db()
    assert appeal.popup is None and not appeal.events.filter(kind=AppealEvent.Kind.POPUP_LINKED).exists()


def test_someone_elses_popup_cannot_be_linked(client, resident_with_popup, operator):
    resident, _popup = resident_with_popup
    foreign = PopupCaseFactory(resident=ResidentFactory(), popup_type=3)
    appeal = AppealFactory(resident=resident, popup=None, popup_type_claimed=3)
    client.force_login(operator)
    response = client.post(reverse("appeals:ticket-action", args=[appeal.pk, "link-popup"]), {"popup": foreign.pk},
                           follow=True)
    assert "not one of this resident&#x27;s open popups" in response.content.decode()
    appeal.refresh_from_db()
    assert appeal.popup is None
