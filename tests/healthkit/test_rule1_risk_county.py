"""Rule 1: a county is affected at t if it reported a local case in the 7 days up to t; active
while the resident stayed in an affected county and left it less than W days before t
(W = 14 before 2022-07-16, 7 from then); lifted when either stops being true."""

import datetime as dt

import pytest

from healthkit.models import PopupEvent
from tests.factories import ResidentFactory
from tests.factories.healthkit import LocalCaseFactory, StayFactory, cst
from tests.healthkit.engine_helpers import active_at, cases

pytestmark = pytest.mark.django_db
SECOND = dt.timedelta(seconds=1)
JULY_16 = cst(2022, 7, 16)


def test_raised_when_the_case_is_reported_and_lifted_after_seven_case_free_days():
    stay = StayFactory(started_at=cst(2022, 6, 1, 9), ended_at=cst(2022, 6, 5, 12),
                       received_at=cst(2022, 6, 5, 12))
    case = LocalCaseFactory(county=stay.county, reported_at=cst(2022, 6, 8, 10))
    resident = stay.resident
    assert active_at(resident, cst(2022, 6, 8, 10) - SECOND) == []
    assert active_at(resident, cst(2022, 6, 8, 10)) == [1]
    assert active_at(resident, cst(2022, 6, 15, 10) - SECOND) == [1]
    assert active_at(resident, cst(2022, 6, 15, 10)) == []
    (popup,) = cases(resident, 1)
    raised = popup.events.get(kind=PopupEvent.Kind.RAISED)
    assert raised.data["records"] == [{"stay": stay.pk, "local_case": case.pk, "county": stay.county}]
    assert raised.data["policy"] == "2022-02-12"
    lifted = popup.events.get(kind=PopupEvent.Kind.LIFTED)
    assert lifted.data["records"]["ended_by"] == "county_case_free"
    assert popup.lifted_at == cst(2022, 6, 15, 10)


def test_lifted_fourteen_days_after_leaving_before_july_16():
    stay = StayFactory(started_at=cst(2022, 6, 1, 9), ended_at=cst(2022, 6, 5, 12))
    LocalCaseFactory(county=stay.county, reported_at=cst(2022, 6, 4, 10))
    LocalCaseFactory(county=stay.county, reported_at=cst(2022, 6, 12, 10))
    LocalCaseFactory(county=stay.county, reported_at=cst(2022, 6, 18, 10))
    resident = stay.resident
    assert active_at(resident, cst(2022, 6, 19, 12) - SECOND) == [1]
    assert active_at(resident, cst(2022, 6, 19, 12)) == []
    (popup,) = cases(resident, 1)
    assert popup.events.get(kind=PopupEvent.Kind.LIFTED).data["records"]["ended_by"] == "window_since_leaving"


def test_no_popup_for_a_case_reported_after_the_window_since_leaving():
    stay = StayFactory(started_at=cst(2022, 6, 1, 9), ended_at=cst(2022, 6, 5, 12))
    LocalCaseFactory(county=stay.county, reported_at=cst(2022, 6, 19, 12))
    assert active_at(stay.resident, cst(2022, 6, 19, 12)) == []


def test_other_counties_do_not_count():
    stay = StayFactory(county="420111")
    LocalCaseFactory(county="420102", reported_at=stay.started_at)
    assert active_at(stay.resident, stay.ended_at) == []


def test_the_window_shrinks_to_seven_days_on_july_16():
    # Left on 07-10 18:00, county affected until 07-19 10:00: under the old rule the popup would
    # last until 07-19; from 07-16 the 7-day window ends it on 07-17 18:00.
    stay = StayFactory(started_at=cst(2022, 7, 8, 9), ended_at=cst(2022, 7, 10, 18))
    LocalCaseFactory(county=stay.county, reported_at=cst(2022, 7, 12, 10))
    resident = stay.resident
    assert active_at(resident, cst(2022, 7, 15, 23, 59, 59)) == [1]
    assert active_at(resident, JULY_16) == [1]
    assert len(cases(resident, 1)) == 1  # the same popup carries across the boundary
    assert active_at(resident, cst(2022, 7, 17, 18) - SECOND) == [1]
    assert active_at(resident, cst(2022, 7, 17, 18)) == []
    (popup,) = cases(resident, 1)
    lifted = popup.events.get(kind=PopupEvent.Kind.LIFTED)
    assert lifted.data["policy"] == "2022-07-16"
    assert lifted.data["records"]["ended_by"] == "window_since_leaving"


def test_popup_older_than_seven_days_since_leaving_is_lifted_at_july_16_midnight():
    stay = StayFactory(started_at=cst(2022, 7, 1, 9), ended_at=cst(2022, 7, 5, 12))
    LocalCaseFactory(county=stay.county, reported_at=cst(2022, 7, 10, 10))
    resident = stay.resident
    assert active_at(resident, JULY_16 - SECOND) == [1]
    assert active_at(resident, JULY_16 + dt.timedelta(hours=6)) == []
    (popup,) = cases(resident, 1)
    assert popup.lifted_at == JULY_16
    assert popup.events.get(kind=PopupEvent.Kind.LIFTED).data["records"]["ended_by"] == "policy_boundary"


def test_late_reported_stay_raises_from_its_receipt_not_before():
    resident = ResidentFactory()
    LocalCaseFactory(county="420111", reported_at=cst(2022, 6, 3, 10))
    StayFactory(resident=resident, county="420111", started_at=cst(2022, 6, 1), ended_at=cst(2022, 6, 4),
                received_at=cst(2022, 6, 6, 9))
    assert active_at(resident, cst(2022, 6, 6, 9)) == [1]
    assert cases(resident, 1)[0].raised_at == cst(2022, 6, 6, 9)
