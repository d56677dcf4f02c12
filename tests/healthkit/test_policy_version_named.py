"""A popup's "why" names the policy version that decided it, on every path of the engine.

Rules 1 and 2 are clipped to each version's window, so the version in force when the popup
is dated decided it. Rule 4 is not: the deadline of the version in force at the trigger
applies, wherever it falls, so a trigger just before a new version's start is raised under the
old version's deadline, inside the new version's window. The popup, its event, its outbox
record and the staff's explanation must all name (and quote) the old version then.
"""

import datetime as dt

import pytest
from django.utils import translation

from healthkit import clock, services
from healthkit.models import OutboxRecord, PopupCase, PopupEvent, PopupPolicy
from healthkit.selectors import policy_in_force, popup_explain
from tests.factories.healthkit import (
    ArrivalFactory,
    DownstreamEndpointFactory,
    LocalCaseFactory,
    QuarantineOrderFactory,
    StayFactory,
    cst,
)
from tests.healthkit.engine_helpers import RAISE_PATHS, evaluate_by

pytestmark = pytest.mark.django_db
CHANGE = cst(2022, 9, 1)  # the new versions' first instant (16:00 UTC the day before)
US = dt.timedelta(microseconds=1)
NEW = {1: {"window_days": 3, "case_free_days": 7}, 2: {"auto_lift": True}, 4: {"deadline_hours": 48}}


@pytest.fixture(autouse=True)
def _new_versions():
    """Each of types 1, 2 and 4 gets a version "2022-09-01" from CHANGE, added in August."""
    DownstreamEndpointFactory()
    with clock.frozen_at(cst(2022, 8, 1)):
        for popup_type, params in NEW.items():
            old = policy_in_force(popup_type, CHANGE)
            services.policy_version_save(policy=PopupPolicy(
                popup_type=popup_type, version="2022-09-01", effective_from=CHANGE,
                params={**old.params, **params}))


def _type_1(start):
    stay = StayFactory(county="420111", started_at=start - dt.timedelta(days=2), ended_at=start - dt.timedelta(days=1),
                       received_at=start - dt.timedelta(days=1))
    LocalCaseFactory(county="420111", reported_at=start, received_at=start)
    return stay.resident, start


def _type_2(start):
    order = QuarantineOrderFactory(starts_at=start, ends_at=start + dt.timedelta(days=7), received_at=start)
    return order.resident, start


def _type_4(trigger):
    arrival = ArrivalFactory(arrived_at=trigger, received_at=trigger)
    hours = policy_in_force(4, trigger).params["deadline_hours"]
    return arrival.resident, trigger + dt.timedelta(hours=hours)


PATHS = RAISE_PATHS


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("popup_type", "make"), [(1, _type_1), (2, _type_2), (4, _type_4)])
@pytest.mark.parametrize("offset", [-US, dt.timedelta(0), US], ids=["just before", "at", "just after"])
def test_a_raise_names_the_version_whose_rule_decided_it(monkeypatch, path, popup_type, make, offset):
    # given a signal at the new version's boundary (before, at, after it)
    resident, raised_at = make(CHANGE + offset)
    deciding = policy_in_force(popup_type, CHANGE + offset)
    # when the engine raises the popup (by the resident's evaluation or a sweep)
    evaluate_by(path, monkeypatch, resident, raised_at)
    # then the popup, its event and its outbox record name the deciding version
    case = PopupCase.objects.get(resident=resident, popup_type=popup_type)
    assert case.raised_at == raised_at
    assert case.policy_id == deciding.pk
    assert PopupEvent.objects.get(case=case, kind="raised").data["policy"] == deciding.version
    assert OutboxRecord.objects.get(case=case, kind="raised").payload["policy"] == deciding.version
    if popup_type == 4:  # and the explanation quotes its deadline
        with translation.override("en"):
            rule = popup_explain(case)[1]
        assert f"within {deciding.params['deadline_hours']} hours" in rule, rule
