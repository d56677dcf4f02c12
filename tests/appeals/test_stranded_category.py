"""A "stranded" appeal (outside the city over a month, wishing to return) must say since when: the
relief job finds long-stranded residents by that date. Every channel requires it, in the past and
over a month ago, and the category itself means outside and wishing to return."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from appeals.models import Appeal
from appeals.services import appeal_file
from communities.models import User
from healthkit.errors import ApplicationError
from tests.appeals.test_resident_filing import _identify
from tests.factories import UserFactory, make_id_number

pytestmark = pytest.mark.django_db


def _days_ago(days: int) -> dt.date:
    return timezone.localdate() - dt.timedelta(days=days)


def test_online_stranded_without_a_date_is_refused_with_a_clear_error(client, sms_outbox, resident_with_popup):
    resident, popup = resident_with_popup
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    response = client.post(reverse("appeals:file-popup"), {"popup": str(popup.pk), "category": "stranded",
                                                           "currently_outside_city": "on", "wishes_to_return": "on"})
    assert response.status_code == 400
    assert "Please give the date you have been outside the city since" in response.content.decode()


def test_online_stranded_with_a_future_date_is_refused(client, sms_outbox, resident_with_popup):
    resident, popup = resident_with_popup
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    response = client.post(reverse("appeals:file-popup"), {"popup": str(popup.pk), "category": "stranded",
                                                           "outside_since": _days_ago(-3).isoformat()})
    assert response.status_code == 400 and "This date is in the future." in response.content.decode()


def test_online_stranded_with_a_date_is_filed_as_outside_and_wishing_to_return(client, sms_outbox,
                                                                               resident_with_popup):
    # given a resident who only picks the category and the date (no ticks)
    resident, popup = resident_with_popup
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    since = _days_ago(45)
    response = client.post(reverse("appeals:file-popup"), {"popup": str(popup.pk), "category": "stranded",
                                                           "outside_since": since.isoformat()})
    assert response.status_code == 302
    client.post(reverse("appeals:file-community"), {"action": "skip"})
    client.post(reverse("appeals:file-details"), {"description": "Stuck in Urumqi", "action": "continue"})
    assert client.post(reverse("appeals:file-check")).status_code == 302
    # then the appeal carries what the relief job selects on
    appeal = Appeal.objects.get()
    assert appeal.category == Appeal.Category.STRANDED and appeal.priority == Appeal.Priority.HIGH
    assert appeal.outside_since == since and appeal.currently_outside_city and appeal.wishes_to_return


def test_the_service_refuses_stranded_without_a_date_on_every_channel(resident_with_popup):
    resident, popup = resident_with_popup
    with pytest.raises(ApplicationError, match="outside the city since"):
        appeal_file(resident=resident, popup=popup, category="stranded", currently_outside_city=True)
    with pytest.raises(ApplicationError, match="over a month"):
        appeal_file(resident=resident, popup=popup, category="stranded", outside_since=_days_ago(5))
    assert not Appeal.objects.exists()


def test_phone_entry_refuses_stranded_without_a_date(client, operator, community):
    client.force_login(operator)
    response = client.post(reverse("appeals:phone-entry"), {
        "name": "孙七", "id_number": make_id_number(), "phone": "13500001234", "category": "stranded",
        "call_outcome": "reached"})
    assert response.status_code == 400
    assert "Please give the date you have been outside the city since" in response.content.decode()
    assert not Appeal.objects.exists()


def test_open311_stranded_needs_the_outside_since_attribute(client, community):
    key = Token.objects.create(user=UserFactory(role=User.Role.INTEGRATION)).key
    data = {"api_key": key, "service_code": "stranded", "first_name": "小明", "last_name": "王",
            "phone": "13600009999", "attribute[id_number]": make_id_number(), "address_string": "朝阳区望京西园三区"}
    response = client.post("/open311/v2/requests.json", data)
    assert response.status_code == 400 and "outside the city since" in response.json()[0]["description"]
    response = client.post("/open311/v2/requests.json", data | {"attribute[outside_since]": "yesterday"})
    assert response.status_code == 400 and "must be a date" in response.json()[0]["description"]
    since = _days_ago(40)
    response = client.post("/open311/v2/requests.json", data | {"attribute[outside_since]": since.isoformat()})
    assert response.status_code == 201
    appeal = Appeal.objects.get()
    assert appeal.outside_since == since and appeal.wishes_to_return and appeal.currently_outside_city
