"""A full sweep first asks only what changes (engine._CHANGES). With nothing to change nothing
else runs and nothing is written; with lifts and raises the full statement runs on the list it
found, and each change still writes its one event (with its "why") and its one outbox record;
beyond SWEEP_LISTED_RAISES_AT_MOST raises the full statement finds them by its own join, with
the same outcome."""

import datetime as dt

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from healthkit import engine
from healthkit.models import (
    OutboxDelivery,
    OutboxRecord,
    PopupCase,
    PopupEvent,
    PopupPolicy,
    TestResult,
)
from tests.factories import TestResultFactory
from tests.factories.healthkit import (
    ArrivalFactory,
    DownstreamEndpointFactory,
    PopupAssignmentFactory,
    cst,
)

pytestmark = pytest.mark.django_db
ARRIVED = cst(2022, 6, 1, 9)
RAISE_AT = ARRIVED + dt.timedelta(hours=80)
LIFT_AT = ARRIVED + dt.timedelta(hours=100)


def _negative(resident, *, received):
    return TestResultFactory(resident=resident, sampled_at=received - dt.timedelta(hours=2), resulted_at=received,
                             received_at=received, result=TestResult.Outcome.NEGATIVE)


def _written() -> tuple[int, int, int]:
    return PopupEvent.objects.count(), OutboxRecord.objects.count(), OutboxDelivery.objects.count()


def _outcome() -> list[tuple]:
    """Every popup with its events and outbox records, without the ids a rolled-back run used."""
    return [(c.resident_id, c.popup_type, c.state, c.raised_at, c.lifted_at, c.cause,
             [(e.kind, e.to_state, e.at, e.reason, e.data) for e in c.events.order_by("pk")],
             sorted(OutboxRecord.objects.filter(case=c).values_list("kind", "at", "payload__rule")))
            for c in PopupCase.objects.order_by("resident_id", "popup_type")]


@pytest.fixture
def raised():
    """Three residents with a type-4 popup raised (arrival, no negative result by the deadline)."""
    DownstreamEndpointFactory()
    residents = [ArrivalFactory(arrived_at=ARRIVED).resident for _ in range(3)]
    assert engine.evaluate(resident_ids=None, at=RAISE_AT).raised == 3
    return residents


def test_nothing_to_change_runs_only_the_lean_step_and_writes_nothing(raised):
    before = _written()

    with CaptureQueriesContext(connection) as queries:
        result = engine.evaluate(resident_ids=None, at=RAISE_AT + dt.timedelta(minutes=1))

    assert (result.raised, result.lifted, result.deliveries) == (0, 0, 0)
    assert _written() == before
    statements = [q["sql"] for q in queries.captured_queries]
    assert not any("INSERT INTO healthkit_popupevent" in sql for sql in statements)
    assert not any("UPDATE healthkit_popupcase" in sql for sql in statements)


def test_each_lift_writes_one_event_with_its_why_and_one_outbox_record(raised):
    results = [_negative(r, received=LIFT_AT - dt.timedelta(hours=1)) for r in raised[:2]]
    before_events, before_records, before_deliveries = _written()

    result = engine.evaluate(resident_ids=None, at=LIFT_AT)
    again = engine.evaluate(resident_ids=None, at=LIFT_AT)  # nothing left to change

    assert (result.lifted, result.raised, again.lifted, again.raised) == (2, 0, 0, 0)
    assert _written() == (before_events + 2, before_records + 2, before_deliveries + 2)
    for resident, negative in zip(raised[:2], results, strict=True):
        case = PopupCase.objects.get(resident=resident, popup_type=4)
        assert case.state == PopupCase.State.LIFTED
        assert case.lifted_at == negative.received_at
        lift = case.events.get(kind="lifted")
        assert lift.data["records"]["test_result"] == negative.pk
        assert lift.data["records"]["ended_by"] == "negative_result"
        assert list(OutboxRecord.objects.filter(case=case, kind="lifted").values_list("idempotency_key", flat=True)) \
            == [f"popup-{case.pk}-lifted"]
    assert PopupCase.objects.get(resident=raised[2], popup_type=4).state == PopupCase.State.ACTIVE


def test_a_raise_listed_but_lifted_by_a_person_is_not_raised_again(raised):
    case = PopupCase.objects.get(resident=raised[0], popup_type=4)
    PopupCase.objects.filter(pk=case.pk).update(state=PopupCase.State.LIFTED, lifted_at=RAISE_AT + dt.timedelta(hours=1))
    before = _written()

    result = engine.evaluate(resident_ids=None, at=RAISE_AT + dt.timedelta(hours=2))

    assert (result.raised, result.lifted) == (0, 0)
    assert _written() == before
    assert PopupCase.objects.filter(resident=raised[0], popup_type=4).count() == 1


def test_raises_beyond_the_listed_limit_end_where_the_listed_ones_do(monkeypatch):
    DownstreamEndpointFactory()
    residents = [ArrivalFactory(arrived_at=ARRIVED).resident for _ in range(4)]
    _negative(residents[0], received=RAISE_AT - dt.timedelta(hours=10))  # before the deadline: never raised
    for r in residents[1:3]:
        _negative(r, received=LIFT_AT - dt.timedelta(hours=1))  # after the raise: lifted at LIFT_AT
    outcomes = []
    for limit in (10_000, 1):  # listed, then by the full statement's own join
        monkeypatch.setattr(engine, "SWEEP_LISTED_RAISES_AT_MOST", limit)
        with transaction.atomic():
            first = engine.evaluate(resident_ids=None, at=RAISE_AT)
            second = engine.evaluate(resident_ids=None, at=LIFT_AT)
            outcomes.append(((first.raised, second.lifted), _outcome()))
            transaction.set_rollback(True)

    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == (3, 2)


def test_a_sweep_lifting_only_a_type_without_rules_records_its_abolition():
    # given an upstream (type 3) popup, the only kind of popup open, and type 3 abolished later
    assigned = cst(2022, 9, 1, 8)
    abolished = assigned + dt.timedelta(days=2)
    assignment = PopupAssignmentFactory(assigned_at=assigned)
    engine.evaluate(resident_ids=[assignment.resident_id], at=assigned)
    PopupPolicy.objects.filter(popup_type=3, effective_to__isnull=True).update(effective_to=abolished)
    PopupPolicy.objects.create(popup_type=3, version="type-3-abolished", effective_from=abolished,
                               params={"abolished": True})

    # when the full sweep runs after that instant (its lifts' "why" read from no rule at all)
    result = engine.sweep(at=abolished + dt.timedelta(hours=1), full=True)

    # then the popup is lifted at the abolition, and its event and outbox record say so
    case = PopupCase.objects.get(resident_id=assignment.resident_id, popup_type=3)
    assert (result.lifted, case.state, case.lifted_at) == (1, PopupCase.State.LIFTED, abolished)
    lift = case.events.get(kind="lifted")
    assert (lift.data["records"], lift.data["policy"]) == ({"ended_by": "policy_abolished"}, "type-3-abolished")
    assert OutboxRecord.objects.filter(case=case, kind="lifted").count() == 1
