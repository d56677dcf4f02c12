"""Rule 2: active from the start of an entry quarantine order; lifted automatically at 00:00
(city time) on the day after the order ends."""

import datetime as dt

import pytest

from healthkit.models import PopupEvent
from tests.factories.healthkit import QuarantineOrderFactory, cst
from tests.healthkit.engine_helpers import active_at, cases

pytestmark = pytest.mark.django_db
SECOND = dt.timedelta(seconds=1)


def test_active_from_the_start_of_the_order():
    order = QuarantineOrderFactory(starts_at=cst(2022, 5, 1, 10), ends_at=cst(2022, 5, 8, 10),
                                   received_at=cst(2022, 4, 30, 12))
    assert active_at(order.resident, cst(2022, 5, 1, 10) - SECOND) == []
    assert active_at(order.resident, cst(2022, 5, 1, 10)) == [2]


def test_lifted_at_midnight_after_the_end_day():
    order = QuarantineOrderFactory(starts_at=cst(2022, 5, 1, 10), ends_at=cst(2022, 5, 8, 10))
    resident = order.resident
    assert active_at(resident, cst(2022, 5, 2)) == [2]
    assert active_at(resident, cst(2022, 5, 9) - SECOND) == [2]
    assert active_at(resident, cst(2022, 5, 9, 15)) == []
    (case,) = cases(resident, 2)
    # Lifted at the rule's instant, even though the engine looked later.
    assert case.lifted_at == cst(2022, 5, 9)
    lift = case.events.get(kind=PopupEvent.Kind.LIFTED)
    assert lift.data["records"] == {"quarantine_order": order.pk, "ended_by": "quarantine_ended"}


def test_order_ending_at_midnight_lifts_at_the_next_midnight():
    order = QuarantineOrderFactory(starts_at=cst(2022, 5, 1), ends_at=cst(2022, 5, 8))
    assert active_at(order.resident, cst(2022, 5, 8, 23, 59, 59)) == [2]
    assert active_at(order.resident, cst(2022, 5, 9)) == []
