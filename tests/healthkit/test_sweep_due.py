"""The periodic sweep between full sweeps only re-evaluates residents with a rule's time
boundary since the previous sweep (deadline passed, quarantine ended, window expired, county
case-free); a policy boundary, a clock going back or the full-sweep interval make it full."""

import datetime as dt

import pytest

from healthkit import engine
from healthkit.models import EngineSweep, PopupCase
from tests.factories import ResidentFactory
from tests.factories.healthkit import (
    ArrivalFactory,
    LocalCaseFactory,
    QuarantineOrderFactory,
    StayFactory,
    cst,
)
from tests.healthkit.engine_helpers import cases

pytestmark = pytest.mark.django_db
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture(autouse=True)
def _rare_full_sweeps(settings):
    settings.ENGINE_FULL_SWEEP_HOURS = 24 * 365


def _last():
    return EngineSweep.objects.order_by("-pk").first()


def test_a_deadline_passing_between_sweeps_raises_and_only_that_resident_is_evaluated():
    arrival = ArrivalFactory(arrived_at=cst(2022, 6, 1, 9))
    bystander = ArrivalFactory(arrived_at=cst(2022, 5, 1, 9))  # long past, nothing due
    deadline = cst(2022, 6, 4, 9)
    engine.sweep(at=deadline - MINUTE)
    assert _last().full and cases(arrival.resident, 4) == []
    assert engine.sweep(at=deadline + MINUTE).raised == 1
    assert (_last().full, _last().residents) == (False, 1)
    assert cases(arrival.resident, 4)[0].raised_at == deadline
    assert len(cases(bystander.resident, 4)) == 1  # raised by the first, full sweep; left alone since


def test_quarantine_end_lifts_at_midnight_on_the_next_sweep():
    order = QuarantineOrderFactory(starts_at=cst(2022, 5, 1, 10), ends_at=cst(2022, 5, 8, 10))
    engine.sweep(at=cst(2022, 5, 8, 23, 58))
    engine.sweep(at=cst(2022, 5, 9, 0, 1))
    assert not _last().full
    (case,) = cases(order.resident, 2)
    assert (case.state, case.lifted_at) == ("lifted", cst(2022, 5, 9))


def test_quarantine_starting_later_than_it_was_ordered_raises_on_the_next_sweep():
    order = QuarantineOrderFactory(starts_at=cst(2022, 5, 3, 10), ends_at=cst(2022, 5, 10, 10),
                                   received_at=cst(2022, 5, 1))
    engine.sweep(at=cst(2022, 5, 3, 9, 59))
    engine.sweep(at=cst(2022, 5, 3, 10, 1))
    assert cases(order.resident, 2)[0].raised_at == cst(2022, 5, 3, 10)


def test_window_since_leaving_and_county_case_free_expire_on_the_next_sweep():
    left = StayFactory(county="420111", started_at=cst(2022, 8, 1), ended_at=cst(2022, 8, 2, 12))
    stayed = StayFactory(county="420102", started_at=cst(2022, 8, 1), ended_at=cst(2022, 8, 5, 12))
    LocalCaseFactory(county="420111", reported_at=cst(2022, 8, 3, 10))
    LocalCaseFactory(county="420102", reported_at=cst(2022, 8, 4, 10))
    engine.sweep(at=cst(2022, 8, 5, 13))
    assert {c.resident_id for c in PopupCase.objects.filter(state="active")} == {left.resident_id, stayed.resident_id}
    engine.sweep(at=cst(2022, 8, 9, 12, 1))  # left + 7 days
    assert cases(left.resident, 1)[0].lifted_at == cst(2022, 8, 9, 12)
    assert cases(stayed.resident, 1)[0].state == "active"
    engine.sweep(at=cst(2022, 8, 11, 10, 1))  # county 420102 seven days without a case
    assert cases(stayed.resident, 1)[0].lifted_at == cst(2022, 8, 11, 10)
    assert not _last().full


def test_border_port_window_expires_on_the_next_sweep():
    stay = StayFactory(county="533102", border_port=True, started_at=cst(2022, 5, 1, 9), ended_at=cst(2022, 5, 3, 12))
    engine.sweep(at=cst(2022, 5, 4))
    engine.sweep(at=cst(2022, 5, 17, 12, 1))
    assert not _last().full
    assert cases(stay.resident, 5)[0].lifted_at == cst(2022, 5, 17, 12)


def test_crossing_a_policy_boundary_makes_the_sweep_full():
    stay = StayFactory(county="533102", border_port=True, started_at=cst(2022, 7, 10, 9), ended_at=cst(2022, 7, 12, 12))
    engine.sweep(at=cst(2022, 7, 15, 23, 59))
    engine.sweep(at=cst(2022, 7, 16, 0, 1))
    assert _last().full
    assert cases(stay.resident, 5)[0].lifted_at == cst(2022, 7, 16)


def test_a_lost_evaluation_is_caught_by_the_next_full_sweep(settings):
    engine.sweep(at=cst(2022, 6, 1))
    # A negative result's evaluation task was lost: nothing is due, so a due sweep misses it...
    resident = ResidentFactory()
    ArrivalFactory(resident=resident, arrived_at=cst(2022, 5, 20), received_at=cst(2022, 6, 1, 0, 30))
    engine.sweep(at=cst(2022, 6, 1, 1))
    assert cases(resident, 4) == []
    # ...until the full-sweep interval passes.
    settings.ENGINE_FULL_SWEEP_HOURS = 6
    engine.sweep(at=cst(2022, 6, 1, 6, 1))
    assert _last().full and len(cases(resident, 4)) == 1


def test_a_clock_going_back_or_an_explicit_request_makes_it_full():
    engine.sweep(at=cst(2022, 6, 2))
    engine.sweep(at=cst(2022, 6, 1))
    assert _last().full
    engine.sweep(at=cst(2022, 6, 1, 0, 1), full=True)
    assert _last().full
    engine.sweep(at=cst(2022, 6, 1, 0, 2))
    assert not _last().full
