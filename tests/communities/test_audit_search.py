"""Supervisors search the access audit by staff account, by resident (the typed ID number is
matched through its keyed hash and never stored or shown back) and by time."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from communities import pii
from communities.models import PersonalDataAccess, User
from communities.services import access_log
from tests.factories import ResidentFactory, UserFactory, make_id_number

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor():
    return UserFactory(role=User.Role.SUPERVISOR)


@pytest.fixture
def story():
    number = make_id_number()
    watched = ResidentFactory(id_hash=pii.id_hash(number), id_encrypted=pii.encrypt(number),
                              id_masked=pii.mask_id(number))
    other = ResidentFactory()
    nosy = UserFactory(username="nosy-worker", role=User.Role.COMMUNITY_WORKER)
    busy = UserFactory(username="busy-operator", role=User.Role.OPERATOR)
    access_log(actor=nosy, resident=watched, action=PersonalDataAccess.Action.VIEW, context="appeal:1/console")
    access_log(actor=busy, resident=other, action=PersonalDataAccess.Action.VIEW, context="appeal:2/console")
    return number, watched, other, nosy, busy


def _rows(page: str) -> str:
    return page.split('data-testid="audit-rows"', 1)[1]


def test_search_by_resident_id_finds_who_looked_and_never_echoes_the_number(client, supervisor, story):
    number, watched, _other, _nosy, _busy = story
    client.force_login(supervisor)
    response = client.post(reverse("console-audit"), {"id_number": number})
    page = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert "nosy-worker" in _rows(page) and "busy-operator" not in _rows(page)
    assert number not in page
    # the search itself is an audited look-up of that person, storing no number
    lookup = PersonalDataAccess.objects.get(actor=supervisor)
    assert lookup.action == PersonalDataAccess.Action.LOOKUP and lookup.resident == watched
    assert number not in lookup.context and lookup.reason == ""


def test_search_by_staff_account(client, supervisor, story):
    client.force_login(supervisor)
    page = client.post(reverse("console-audit"), {"staff": "busy-operator"}).content.decode()
    assert "busy-operator" in _rows(page) and "nosy-worker" not in _rows(page)


def test_search_by_time(client, supervisor, story):
    client.force_login(supervisor)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    page = client.post(reverse("console-audit"), {"since": tomorrow}).content.decode()
    assert "nosy-worker" not in _rows(page) and "busy-operator" not in _rows(page)
    today = timezone.localdate().isoformat()
    page = client.post(reverse("console-audit"), {"since": today, "until": today}).content.decode()
    assert "nosy-worker" in _rows(page) and "busy-operator" in _rows(page)


def test_an_unknown_or_invalid_id_finds_nothing_and_is_not_echoed(client, supervisor, story):
    client.force_login(supervisor)
    unknown = make_id_number()
    page = client.post(reverse("console-audit"), {"id_number": unknown}).content.decode()
    assert unknown not in page and "nosy-worker" not in _rows(page)
    page = client.post(reverse("console-audit"), {"id_number": "11010519900101123"},
                       HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "11010519900101123" not in page and "not a valid ID number" in page
