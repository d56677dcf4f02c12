"""The "why" of a popup (console, the resident's status page, the APIs: all healthkit.selectors
.popup_explain) quotes the policy version that decides it, across each rule change.

Rules 1, 2 and 5 are cut at each version's boundary: a popup raised under the old version and
kept past a new version's start is held (and lifted) by the new version's rule, so its "why"
quotes the new one from then on, as the lift's event does; the raise's event still names the
version that decided the raise. A type-4 deadline is the one of the version in force at the trigger, so its "why" keeps
quoting that version, and the trigger's own sentence its deadline (not a fixed 72 hours)."""

import datetime as dt

import pytest
from django.utils import translation

from healthkit import clock, engine, services
from healthkit.models import PopupCase, PopupEvent, PopupPolicy
from healthkit.selectors import policy_in_force, popup_event_lines, popup_explain
from tests.factories.healthkit import (
    ArrivalFactory,
    LocalCaseFactory,
    QuarantineOrderFactory,
    StayFactory,
    cst,
)

pytestmark = pytest.mark.django_db
JULY_16 = cst(2022, 7, 16)  # seeded: rule 1's window 14 -> 7 days; rule 5 abolished
SEPT = cst(2022, 9, 1)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _new_version(popup_type: int, **params) -> PopupPolicy:
    with clock.frozen_at(cst(2022, 8, 1)):
        old = policy_in_force(popup_type, SEPT)
        return services.policy_version_save(policy=PopupPolicy(
            popup_type=popup_type, version="2022-09-01", effective_from=SEPT, params={**old.params, **params}))


def _why(case: PopupCase, at: dt.datetime) -> str:
    case.refresh_from_db()
    with clock.frozen_at(at):
        return "\n".join(str(line) for line in popup_explain(case))


def test_type_1_kept_past_2022_07_16_quotes_the_7_day_version_that_holds_and_lifts_it():
    # given a stay left on 07-10 in a county with a case: raised under the 14-day rule
    stay = StayFactory(county="420111", started_at=cst(2022, 7, 5, 9), ended_at=cst(2022, 7, 10, 12))
    LocalCaseFactory(county="420111", reported_at=cst(2022, 7, 12, 10), received_at=cst(2022, 7, 12, 10))
    engine.evaluate(resident_ids=[stay.resident_id], at=cst(2022, 7, 13))
    case = PopupCase.objects.get(resident=stay.resident, popup_type=1)
    old, new = policy_in_force(1, cst(2022, 7, 13)), policy_in_force(1, JULY_16)
    why = _why(case, cst(2022, 7, 13))
    assert "less than 14 days" in why and f"version {old.version}." in why, why
    # when the 7-day version holds it (from 07-16 until 7 days after leaving, 07-17 12:00)
    engine.evaluate(resident_ids=[stay.resident_id], at=cst(2022, 7, 16, 12))
    why = _why(case, cst(2022, 7, 16, 12))
    # then the "why" quotes the version in force, not the raise's
    assert case.state == PopupCase.State.ACTIVE
    assert "less than 7 days" in why and f"version {new.version}." in why, why
    assert "14 days" not in why
    # and once the 7-day window lifts it, the "why" names the version that lifted it
    engine.evaluate(resident_ids=[stay.resident_id], at=cst(2022, 7, 17, 13))
    why = _why(case, cst(2022, 7, 20))
    assert case.state == PopupCase.State.LIFTED and case.lifted_at == cst(2022, 7, 17, 12)
    assert "less than 7 days" in why and f"version {new.version}." in why, why
    # the raise's record keeps naming the version that decided the raise
    assert PopupEvent.objects.get(case=case, kind="raised").data["policy"] == old.version
    assert PopupEvent.objects.get(case=case, kind="lifted").data["policy"] == new.version


def test_type_1_lifted_at_2022_07_16_quotes_the_7_day_version_that_lifted_it():
    # given a stay whose 14-day window runs past 07-16 but whose 7-day one ended before
    stay = StayFactory(county="420111", started_at=cst(2022, 7, 5, 9), ended_at=cst(2022, 7, 7, 12))
    LocalCaseFactory(county="420111", reported_at=cst(2022, 7, 10, 10), received_at=cst(2022, 7, 10, 10))
    engine.evaluate(resident_ids=[stay.resident_id], at=cst(2022, 7, 11))
    engine.evaluate(resident_ids=[stay.resident_id], at=cst(2022, 7, 16, 1))
    case = PopupCase.objects.get(resident=stay.resident, popup_type=1)
    assert case.state == PopupCase.State.LIFTED and case.lifted_at == JULY_16
    why = _why(case, cst(2022, 7, 20))
    # its 7-day window had passed when the version took effect: the version that lifted it
    assert "less than 7 days" in why and f"version {policy_in_force(1, JULY_16).version}." in why, why
    assert "the policy in force changed" in why
    assert PopupEvent.objects.get(case=case, kind="lifted").data["policy"] == policy_in_force(1, JULY_16).version


def test_type_5_lifted_when_abolished_names_the_abolishing_version():
    stay = StayFactory(county="623027", border_port=True, started_at=cst(2022, 7, 10, 9), ended_at=cst(2022, 7, 12, 12))
    engine.evaluate(resident_ids=[stay.resident_id], at=cst(2022, 7, 13))
    engine.evaluate(resident_ids=[stay.resident_id], at=cst(2022, 7, 16, 1))
    case = PopupCase.objects.get(resident=stay.resident, popup_type=5)
    assert case.state == PopupCase.State.LIFTED
    why = _why(case, cst(2022, 7, 20))
    assert "abolished from 2022-07-16" in why and "version 2022-07-16-abolished." in why, why


def test_type_2_kept_past_a_new_version_names_the_version_in_force():
    new = _new_version(2)
    order = QuarantineOrderFactory(starts_at=cst(2022, 8, 28), ends_at=cst(2022, 9, 4, 12), received_at=cst(2022, 8, 28))
    engine.evaluate(resident_ids=[order.resident_id], at=cst(2022, 8, 29))
    case = PopupCase.objects.get(resident=order.resident, popup_type=2)
    assert "version 2022-02-12." in _why(case, cst(2022, 8, 30))
    engine.evaluate(resident_ids=[order.resident_id], at=cst(2022, 9, 2))
    assert f"version {new.version}." in _why(case, cst(2022, 9, 2))
    engine.evaluate(resident_ids=[order.resident_id], at=cst(2022, 9, 6))
    assert f"version {new.version}." in _why(case, cst(2022, 9, 6))


@pytest.mark.parametrize(("arrived", "hours"), [(cst(2022, 8, 31, 23), 72), (cst(2022, 9, 2, 9), 48)],
                         ids=["trigger before the 48-hour version", "trigger under it"])
def test_type_4_quotes_the_deadline_of_the_version_in_force_at_its_trigger(arrived, hours):
    _new_version(4, deadline_hours=48)
    arrival = ArrivalFactory(arrived_at=arrived, received_at=arrived)
    engine.evaluate(resident_ids=[arrival.resident_id], at=arrived + dt.timedelta(hours=hours, minutes=1))
    case = PopupCase.objects.get(resident=arrival.resident, popup_type=4)
    why = _why(case, cst(2022, 9, 10))
    # the rule and the arrival's own sentence quote the trigger's version's deadline
    assert f"required within {hours} hours" in why and f"a test was due within {hours} hours" in why, why
    raised = PopupEvent.objects.get(case=case, kind="raised")
    assert any(f"a test was due within {hours} hours" in line for line in popup_event_lines(raised))
