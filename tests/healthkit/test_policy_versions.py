"""Policy versions of one popup type never overlap (the engine would apply both), and a version
missing a parameter its rule reads is refused, with a clear message in the admin."""


import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import translation

from healthkit import clock, services
from healthkit.models import PopupPolicy
from healthkit.selectors import policy_in_force
from tests.factories import UserFactory
from tests.factories.healthkit import LocalCaseFactory, StayFactory, cst
from tests.healthkit.engine_helpers import active_at

pytestmark = pytest.mark.django_db
SEPT = cst(2022, 9, 1)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _type_1(**params):
    return PopupPolicy(popup_type=1, version="2022-09-01", effective_from=SEPT,
                       params={"window_days": 3, "case_free_days": 7, **params})


def test_an_overlapping_version_is_refused_by_the_database_and_by_validation():
    with pytest.raises(IntegrityError), transaction.atomic():
        _type_1().save()
    with pytest.raises(ValidationError, match="in force during part of this period"):
        _type_1().full_clean()


def test_ending_the_old_version_where_the_new_one_starts_lets_the_engine_use_the_new_window():
    PopupPolicy.objects.filter(pk=policy_in_force(1, SEPT).pk).update(effective_to=SEPT)
    new = _type_1()
    new.full_clean()
    new.save()
    stay = StayFactory(county="420111", started_at=cst(2022, 9, 2, 9), ended_at=cst(2022, 9, 3, 9))
    LocalCaseFactory(county="420111", reported_at=cst(2022, 9, 4, 10))
    assert active_at(stay.resident, cst(2022, 9, 5, 12)) == [1]
    assert active_at(stay.resident, cst(2022, 9, 6, 9)) == []  # 3 days after leaving, not 7


@pytest.mark.parametrize(("popup_type", "params", "missing"), [
    (4, {"deadline_hours": 48}, "triggers"),
    (4, {"deadline_hours": 48, "triggers": []}, "triggers"),
    (1, {"case_free_days": 7}, "window_days"),
])
def test_a_version_missing_a_parameter_its_rule_reads_is_refused(popup_type, params, missing):
    policy = PopupPolicy(popup_type=popup_type, version="x", effective_from=cst(2030, 1, 1), params=params)
    with pytest.raises(ValidationError, match=f"Missing for this popup type: {missing}"):
        policy.full_clean()


def test_the_admin_shows_the_overlap_error_and_saves_nothing():
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(UserFactory(role="administrator", is_staff=True, is_superuser=True))
    with clock.frozen_at(cst(2022, 8, 1)):
        services.policy_version_save(policy=PopupPolicy(
            popup_type=1, version="2022-10-01", effective_from=cst(2022, 10, 1), params={"window_days": 5}))
        before = list(PopupPolicy.objects.values_list("pk", "effective_from", "effective_to"))
        response = client.post("/admin/healthkit/popuppolicy/add/", {
            "popup_type": 1, "version": "2022-09-01", "effective_from_0": "2022-09-01", "effective_from_1": "00:00:00",
            "effective_to_0": "2022-11-01", "effective_to_1": "00:00:00", "params": '{"window_days": 3}', "source": "test",
        })
    assert response.status_code == 200
    assert "Version 2022-09-01 is still in force when version 2022-10-01 starts" in response.content.decode()
    assert list(PopupPolicy.objects.values_list("pk", "effective_from", "effective_to")) == before
