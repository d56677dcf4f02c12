"""The full sweep (everyone, planned for a million open popups: hash joins) and the evaluation of
a list of residents (index probes) are the same rules: on a population mixing every rule and
the type-4 corner cases they raise and lift the same popups, at the same instants, with the same
records."""

import datetime as dt

import pytest
from django.db import transaction

from healthkit import engine
from healthkit.models import PopupCase, PopupPolicy, TestRequirement, TestResult
from tests.factories import ResidentFactory, TestResultFactory
from tests.factories.healthkit import (
    ArrivalFactory,
    LocalCaseFactory,
    MedicalEventFactory,
    QuarantineOrderFactory,
    StayFactory,
    cst,
)

pytestmark = pytest.mark.django_db
ARRIVED = cst(2022, 6, 1, 9)
DEADLINE = ARRIVED + dt.timedelta(hours=72)
FIRST = ARRIVED + dt.timedelta(hours=80)
SECOND = ARRIVED + dt.timedelta(hours=100)


def _negative(resident, *, sampled, received, superseded=None):
    return TestResultFactory(resident=resident, sampled_at=sampled, resulted_at=received, received_at=received,
                             result=TestResult.Outcome.NEGATIVE, superseded_at=superseded)


def _outcome() -> list[tuple]:
    """Every popup with its events, keyed by what does not depend on row ids of the run."""
    rows = []
    for case in PopupCase.objects.order_by("resident_id", "popup_type", "raised_at"):
        events = [(e.kind, e.from_state, e.to_state, e.at, e.reason, e.data)
                  for e in case.events.order_by("at", "pk")]
        rows.append((case.resident_id, case.popup_type, case.state, case.source, case.raised_at, case.lifted_at,
                     case.cause, events))
    return rows


def _both_paths(at: dt.datetime, residents: list[int]) -> list[tuple]:
    """Run the full sweep and the per-resident evaluation at `at`, each rolled back; return the
    outcome after asserting they agree."""
    outcomes = []
    for resident_ids in (None, residents):
        with transaction.atomic():
            engine.evaluate(resident_ids=resident_ids, at=at)
            outcomes.append(_outcome())
            transaction.set_rollback(True)
    full, listed = outcomes
    assert full == listed
    return full


@pytest.fixture(params=["hash", "probe"], autouse=True)
def _type4_strategy(request, monkeypatch):
    """Both ways a full sweep tests the type-4 triggers (one hash of the results, or index
    probes), whatever the table statistics say."""
    monkeypatch.setattr(engine, "_type4_by_probe", lambda results, triggers: request.param == "probe")


@pytest.fixture(params=["listed", "joined"], autouse=True)
def _full_sweep_changes(request, monkeypatch):
    """Both ways a full sweep makes the changes its lean step found: on the list (the popups to
    lift by id, the raises' residents), or by the full statement's own join (many raises)."""
    monkeypatch.setattr(engine, "SWEEP_LISTED_RAISES_AT_MOST", 10_000 if request.param == "listed" else 0)


def test_full_sweep_and_per_resident_evaluation_agree():
    waiting = ArrivalFactory(arrived_at=ARRIVED).resident  # no result: raised, stays open
    tied = ArrivalFactory(arrived_at=ARRIVED).resident  # two negatives received at once: lifted
    corrected = MedicalEventFactory(occurred_at=ARRIVED).resident  # its negative superseded later
    early = ArrivalFactory(arrived_at=ARRIVED).resident  # negative before the deadline: never raised
    required = ResidentFactory()  # a test requirement with its own deadline
    TestRequirement.objects.create(resident=required, kind="occupational", trigger_at=ARRIVED,
                                   deadline_at=ARRIVED + dt.timedelta(hours=24), reason="r", received_at=ARRIVED)
    quarantined = QuarantineOrderFactory(starts_at=ARRIVED, ends_at=ARRIVED + dt.timedelta(hours=70)).resident
    stay = StayFactory(county="420111", started_at=ARRIVED - dt.timedelta(days=2), ended_at=ARRIVED)
    LocalCaseFactory(county="420111", reported_at=ARRIVED - dt.timedelta(days=1))
    residents = [waiting.pk, tied.pk, corrected.pk, early.pk, required.pk, quarantined.pk, stay.resident_id]

    _negative(early, sampled=ARRIVED + dt.timedelta(hours=5), received=ARRIVED + dt.timedelta(hours=30))
    _negative(corrected, sampled=ARRIVED + dt.timedelta(hours=75), received=ARRIVED + dt.timedelta(hours=78),
              superseded=ARRIVED + dt.timedelta(hours=79))
    first = _both_paths(FIRST, residents)
    assert {(r[0], r[1]) for r in first if r[2] == "active"} == {
        (waiting.pk, 4), (tied.pk, 4), (corrected.pk, 4), (required.pk, 4), (quarantined.pk, 2),
        (stay.resident_id, 1)}
    engine.evaluate(resident_ids=None, at=FIRST)

    received = ARRIVED + dt.timedelta(hours=95)
    one = _negative(tied, sampled=ARRIVED + dt.timedelta(hours=82), received=received)
    two = _negative(tied, sampled=ARRIVED + dt.timedelta(hours=81), received=received)
    second = _both_paths(SECOND, residents)
    lifted = {(r[0], r[1]): r for r in second if r[2] == "lifted"}
    assert set(lifted) == {(tied.pk, 4), (quarantined.pk, 2)}
    assert lifted[(tied.pk, 4)][5] == received
    lift_event = lifted[(tied.pk, 4)][7][-1]
    assert lift_event[0] == "lifted"
    assert lift_event[5]["records"]["test_result"] == min(one.pk, two.pk)  # earliest id on a tie
    assert lifted[(quarantined.pk, 2)][5] == cst(2022, 6, 5)  # 00:00 the day after it ended


def test_a_trigger_kind_the_policy_does_not_list_raises_nothing_in_either_path():
    policy = PopupPolicy.objects.get(popup_type=4, effective_to__isnull=True)
    policy.params = {**policy.params, "triggers": ["arrival", "drug_purchase"]}
    policy.save()
    visit = MedicalEventFactory(kind="clinic_visit", detail="fatigue", occurred_at=ARRIVED).resident
    arrival = ArrivalFactory(arrived_at=ARRIVED).resident
    outcome = _both_paths(FIRST, [visit.pk, arrival.pk])
    assert [(r[0], r[1]) for r in outcome] == [(arrival.pk, 4)]


def test_lifts_of_several_types_in_one_sweep_each_name_their_own_records():
    # given: two residents with entry quarantine (type 2) and a missed test (type 4) popups; one's
    # quarantine ends before the sweep, the other's goes on; both then have a negative result
    done = QuarantineOrderFactory(starts_at=ARRIVED, ends_at=ARRIVED + dt.timedelta(hours=70))
    going_on = QuarantineOrderFactory(starts_at=ARRIVED, ends_at=ARRIVED + dt.timedelta(days=30))
    arrivals = {order.resident_id: ArrivalFactory(resident=order.resident, arrived_at=ARRIVED)
                for order in (done, going_on)}
    engine.evaluate(resident_ids=None, at=FIRST)
    assert PopupCase.objects.filter(state="active").count() == 4
    results = {order.resident_id: _negative(order.resident, sampled=FIRST, received=FIRST + dt.timedelta(hours=2))
               for order in (done, going_on)}

    # when: one full sweep lifts three popups of two types
    evaluation = engine.evaluate(resident_ids=None, at=SECOND)

    # then: each lift names the records of its own type only, and the running quarantine stays
    assert evaluation.lifted == 3
    records = {(case.resident_id, case.popup_type): case.events.get(kind="lifted").data["records"]
               for case in PopupCase.objects.filter(state="lifted")}
    assert records == {
        (done.resident_id, 2): {"quarantine_order": done.pk, "ended_by": "quarantine_ended"},
        **{(rid, 4): {"arrival": arrivals[rid].pk, "ended_by": "negative_result", "test_result": results[rid].pk}
           for rid in arrivals},
    }
    assert PopupCase.objects.get(state="active").resident_id == going_on.resident_id
