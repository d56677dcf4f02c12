"""Rule 5: active while the resident stayed in a border-port county within 14 days; never
raised for instants from 2022-07-16; any still active are lifted at 2022-07-16 00:00 +08:00."""

import datetime as dt

import pytest

from healthkit import engine
from healthkit.models import PopupCase, PopupEvent
from healthkit.services import popup_raise
from tests.factories import ResidentFactory
from tests.factories.healthkit import StayFactory, cst
from tests.healthkit.engine_helpers import active_at, cases

pytestmark = pytest.mark.django_db
SECOND = dt.timedelta(seconds=1)
JULY_16 = cst(2022, 7, 16)


def test_raised_on_record_and_lifted_fourteen_days_after_leaving():
    stay = StayFactory(county="533102", border_port=True, started_at=cst(2022, 5, 1, 9),
                       ended_at=cst(2022, 5, 3, 12), received_at=cst(2022, 5, 4, 8))
    resident = stay.resident
    assert active_at(resident, cst(2022, 5, 4, 8) - SECOND) == []
    assert active_at(resident, cst(2022, 5, 4, 8)) == [5]
    assert active_at(resident, cst(2022, 5, 17, 12) - SECOND) == [5]
    assert active_at(resident, cst(2022, 5, 17, 12)) == []


def test_stay_without_border_port_is_not_type_5():
    stay = StayFactory(county="533102", border_port=False)
    assert active_at(stay.resident, stay.ended_at) == []


def test_still_active_ones_are_lifted_at_july_16_midnight_by_the_sweep():
    stay = StayFactory(county="533102", border_port=True, started_at=cst(2022, 7, 10, 9),
                       ended_at=cst(2022, 7, 12, 12))
    resident = stay.resident
    assert active_at(resident, JULY_16 - SECOND) == [5]
    engine.sweep(at=JULY_16 + dt.timedelta(minutes=1))
    (popup,) = cases(resident, 5)
    assert (popup.state, popup.lifted_at) == ("lifted", JULY_16)
    lifted = popup.events.get(kind=PopupEvent.Kind.LIFTED)
    assert lifted.data["policy"] == "2022-07-16-abolished"
    assert lifted.data["records"]["ended_by"] == "policy_boundary"


def test_never_raised_for_instants_from_july_16():
    stay = StayFactory(county="533102", border_port=True, started_at=cst(2022, 7, 14, 9),
                       ended_at=cst(2022, 7, 15, 12), received_at=JULY_16)
    assert active_at(stay.resident, JULY_16) == []
    assert cases(stay.resident, 5) == []


def test_type_5_raised_by_hand_is_lifted_too_when_abolished():
    resident = ResidentFactory()
    case, _ = popup_raise(resident=resident, popup_type=5, source=PopupCase.Source.MANUAL,
                          cause={"reason": "test"}, at=cst(2022, 7, 10))
    engine.sweep(at=JULY_16 + dt.timedelta(hours=1))
    case.refresh_from_db()
    assert (case.state, case.lifted_at) == ("lifted", JULY_16)
