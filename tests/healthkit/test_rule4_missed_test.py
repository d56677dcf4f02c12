"""Rule 4: a trigger sets a deadline 72 h later; a negative sampled after the trigger, once on
record (received), lifts; a positive lifts nothing and turns the code red."""

import datetime as dt

import pytest

from healthkit import engine
from healthkit.models import PopupCase, PopupEvent, PopupPolicy, TestRequirement, TestResult
from healthkit.selectors import health_code_at
from tests.factories import ResidentFactory, TestResultFactory
from tests.factories.healthkit import ArrivalFactory, MedicalEventFactory, cst
from tests.healthkit.engine_helpers import active_at, cases

pytestmark = pytest.mark.django_db
ARRIVED = cst(2022, 6, 1, 9)
DEADLINE = ARRIVED + dt.timedelta(hours=72)
SECOND = dt.timedelta(seconds=1)


def _negative(resident, *, sampled, received):
    return TestResultFactory(resident=resident, sampled_at=sampled, resulted_at=received,
                             received_at=received, result=TestResult.Outcome.NEGATIVE)


def test_raised_exactly_at_the_deadline_not_before():
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    resident = arrival.resident
    assert active_at(resident, DEADLINE - SECOND) == []
    assert active_at(resident, DEADLINE) == [4]
    (case,) = cases(resident, 4)
    assert case.raised_at == DEADLINE and case.source == "engine"


def test_late_sweep_still_dates_the_popup_at_the_deadline_and_says_why():
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    engine.sweep(at=DEADLINE + dt.timedelta(hours=5))
    (case,) = cases(arrival.resident, 4)
    assert case.raised_at == DEADLINE
    event = case.events.get(kind=PopupEvent.Kind.RAISED)
    assert event.data["rule"] == "missed_test"
    assert event.data["policy"] == "2022-02-12"
    (record,) = event.data["records"]
    assert record["arrival"] == arrival.pk and dt.datetime.fromisoformat(record["deadline"]) == DEADLINE


def test_negative_on_record_before_deadline_means_never_raised():
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    _negative(arrival.resident, sampled=ARRIVED + dt.timedelta(hours=20), received=DEADLINE - SECOND)
    assert active_at(arrival.resident, DEADLINE) == []
    assert cases(arrival.resident, 4) == []


def test_negative_after_deadline_lifts_type_4_at_its_receipt():
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    resident = arrival.resident
    assert active_at(resident, DEADLINE) == [4]
    received = DEADLINE + dt.timedelta(hours=3)
    result = _negative(resident, sampled=DEADLINE + dt.timedelta(hours=1), received=received)
    assert active_at(resident, received - SECOND) == [4]
    assert active_at(resident, received) == []
    (case,) = cases(resident, 4)
    assert (case.state, case.lifted_at) == ("lifted", received)
    lift = case.events.get(kind=PopupEvent.Kind.LIFTED)
    assert lift.actor_label == "engine"
    assert lift.data["records"]["test_result"] == result.pk
    assert lift.data["records"]["ended_by"] == "negative_result"


def test_result_counts_from_receipt_not_from_sampling():
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    # Sampled before the deadline but synced after it: the popup still appears at the deadline.
    _negative(arrival.resident, sampled=ARRIVED + dt.timedelta(hours=10), received=DEADLINE + dt.timedelta(hours=2))
    assert active_at(arrival.resident, DEADLINE) == [4]
    assert active_at(arrival.resident, DEADLINE + dt.timedelta(hours=2)) == []


def test_negative_sampled_before_the_trigger_does_not_count():
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    _negative(arrival.resident, sampled=ARRIVED - SECOND, received=ARRIVED + dt.timedelta(hours=1))
    assert active_at(arrival.resident, DEADLINE) == [4]


def test_positive_never_lifts_and_turns_the_code_red():
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    resident = arrival.resident
    TestResultFactory(resident=resident, sampled_at=ARRIVED + dt.timedelta(hours=30),
                      resulted_at=DEADLINE + dt.timedelta(hours=1), received_at=DEADLINE + dt.timedelta(hours=1),
                      result=TestResult.Outcome.POSITIVE)
    at = DEADLINE + dt.timedelta(hours=2)
    assert active_at(resident, at) == [4]
    assert health_code_at(resident, at).color == "red"


def test_drug_purchase_and_clinic_visit_are_triggers_too():
    purchase = MedicalEventFactory(occurred_at=ARRIVED)
    visit = MedicalEventFactory(kind="clinic_visit", detail="fatigue", occurred_at=ARRIVED)
    assert active_at(purchase.resident, DEADLINE) == [4]
    assert active_at(visit.resident, DEADLINE) == [4]


def test_a_new_trigger_after_a_lift_raises_a_new_popup():
    resident = ResidentFactory()
    ArrivalFactory(resident=resident, arrived_at=ARRIVED)
    assert active_at(resident, DEADLINE) == [4]
    _negative(resident, sampled=DEADLINE, received=DEADLINE + dt.timedelta(hours=1))
    assert active_at(resident, DEADLINE + dt.timedelta(hours=1)) == []
    second = ARRIVED + dt.timedelta(days=10)
    ArrivalFactory(resident=resident, arrived_at=second)
    assert active_at(resident, second + dt.timedelta(hours=72)) == [4]
    assert [c.state for c in cases(resident, 4)] == ["lifted", "active"]


@pytest.mark.parametrize("full", [True, False], ids=["full sweep", "listed residents"])
def test_deadline_and_triggers_come_from_the_version_in_force_at_the_trigger(full):
    # given: from `change` the type-4 rule gives 24 hours and counts arrivals only
    change = cst(2022, 6, 10)
    PopupPolicy.objects.filter(popup_type=4, effective_to__isnull=True).update(effective_to=change)
    PopupPolicy.objects.create(popup_type=4, version="2022-06-10", effective_from=change,
                               params={"deadline_hours": 24, "triggers": ["arrival"], "auto_lift": True})
    hour = dt.timedelta(hours=1)
    before = ArrivalFactory(arrived_at=change - hour).resident  # the old version: 72 hours
    after = ArrivalFactory(arrived_at=change + hour).resident  # the new one: 24 hours
    bought_before = MedicalEventFactory(occurred_at=change - 80 * hour).resident  # counted then
    bought_after = MedicalEventFactory(occurred_at=change + hour).resident  # no longer counted
    required = ResidentFactory()  # a test requirement always counts, by its own deadline
    TestRequirement.objects.create(resident=required, kind="occupational", trigger_at=change + hour,
                                   deadline_at=change + 2 * hour, reason="r", received_at=change)
    residents = [before, after, bought_before, bought_after, required]

    def open_popups(at):
        engine.evaluate(resident_ids=None if full else [r.pk for r in residents], at=at)
        return {r for r in residents if PopupCase.objects.filter(resident=r, popup_type=4, state="active").exists()}

    # when / then: each trigger's deadline is its own version's
    assert open_popups(change + 3 * hour) == {bought_before, required}
    assert open_popups(change + 25 * hour) == {bought_before, required, after}
    assert open_popups(change + 71 * hour) == {bought_before, required, after, before}
    assert PopupCase.objects.get(resident=after, popup_type=4).raised_at == change + 25 * hour
    assert PopupCase.objects.get(resident=before, popup_type=4).raised_at == change + 71 * hour
