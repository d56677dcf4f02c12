"""The health-code look-up by ID number: a reason required, scoped, audited with the reason (hits and
misses), throttled per user and capped per account and day."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from communities.models import PersonalDataAccess
from tests.factories import CommunityFactory, ResidentFactory, UserFactory, make_id_number

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttle(monkeypatch):
    cache.clear()
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "health_code": "3/min"})
    yield
    cache.clear()


def _client(user):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(user)
    return client


def test_operator_gets_the_code_masked_and_the_look_up_is_audited():
    resident = ResidentFactory()
    operator = UserFactory(role="operator")
    response = _client(operator).post(reverse("api-health-code"), {"id_number": resident.reveal_id_number(),
                                                                  "reason": "caller at the checkpoint"}, format="json")
    assert response.status_code == 200
    assert response.json()["code"] == "green" and response.json()["resident"] == resident.masked
    assert resident.reveal_id_number() not in response.content.decode()
    log = PersonalDataAccess.objects.get()
    assert (log.actor, log.resident, log.context, log.reason_note.reason) == (
        operator, resident, "api:health-code", "caller at the checkpoint")


def test_misses_and_other_communities_are_refused_alike_and_audited():
    worker = UserFactory(role="community_worker", communities=[CommunityFactory()])
    elsewhere = ResidentFactory(community=CommunityFactory())
    client = _client(worker)
    for number in (elsewhere.reveal_id_number(), make_id_number()):
        response = client.post(reverse("api-health-code"), {"id_number": number, "reason": "r"}, format="json")
        assert response.status_code == 400
        assert response.json()["detail"] == "No resident you may see has that ID number."
    assert list(PersonalDataAccess.objects.values_list("resident", "context")) == [
        (None, "api:health-code:no-match"), (None, "api:health-code:no-match")]


def test_look_ups_are_throttled_per_user():
    operator, other = UserFactory(role="operator"), UserFactory(role="operator")
    number = ResidentFactory().reveal_id_number()
    statuses = [_client(operator).post(reverse("api-health-code"), {"id_number": number, "reason": "r"}, format="json").status_code
                for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert _client(other).post(reverse("api-health-code"), {"id_number": number, "reason": "r"}, format="json").status_code == 200


def test_a_look_up_without_a_reason_is_refused_in_plain_words_and_not_answered():
    resident = ResidentFactory()
    response = _client(UserFactory(role="operator")).post(
        reverse("api-health-code"), {"id_number": resident.reveal_id_number(), "reason": "  "}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid"  # no health code
    assert not PersonalDataAccess.objects.exists()


def test_each_account_has_a_daily_cap_counting_misses_too(settings):
    settings.HEALTH_CODE_LOOKUPS_PER_DAY = 2
    operator, other = UserFactory(role="operator"), UserFactory(role="operator")
    number = ResidentFactory().reveal_id_number()
    client = _client(operator)
    first = client.post(reverse("api-health-code"), {"id_number": make_id_number(), "reason": "r"}, format="json")
    second = client.post(reverse("api-health-code"), {"id_number": number, "reason": "r"}, format="json")
    third = client.post(reverse("api-health-code"), {"id_number": number, "reason": "r"}, format="json")
    assert (first.status_code, second.status_code, third.status_code) == (400, 200, 429)
    assert "health-code look-ups for today" in third.json()["detail"] and third.json()["code"] == "limit_reached"
    assert 0 < int(third["Retry-After"]) <= 24 * 3600  # until the next day, when the cap starts again
    assert PersonalDataAccess.objects.filter(actor=operator).count() == 2  # the refused one read nothing
    assert _client(other).post(reverse("api-health-code"), {"id_number": number, "reason": "r"},
                               format="json").status_code == 200
