"""A missed required test during an investigation raises popup 4 (the engine tracks the days)."""

import datetime as dt

import pytest

from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from healthkit import clock, engine
from healthkit.models import PopupCase, TestResult
from tests.factories import PopupCaseFactory, TestResultFactory
from tests.factories.clearance import ClearanceTaskFactory, WorkerFactory
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db
AT = cst(2022, 11, 10, 10)
SECOND = dt.timedelta(seconds=1)


def _negative(resident, sampled):
    received = sampled + dt.timedelta(hours=8)
    TestResultFactory(resident=resident, sampled_at=sampled, resulted_at=received, received_at=received,
                      result=TestResult.Outcome.NEGATIVE)


def _open_type_4(resident, at):
    engine.evaluate(resident_ids=[resident.pk], at=at)
    return list(PopupCase.objects.filter(resident=resident, popup_type=4, state__in=PopupCase.OPEN_STATES))


def test_missed_day_4_test_raises_type_4_and_a_late_result_lifts_it():
    popup = PopupCaseFactory(popup_type=3, raised_at=AT - dt.timedelta(days=1))
    task = ClearanceTaskFactory(resident=popup.resident, popup=popup)
    worker = WorkerFactory(communities=[task.community])
    with clock.frozen_at(AT):
        services.clearance_investigate(task=task, actor=worker, outcome=ClearanceTask.Outcome.LISTED_AREA,
                                       reason="其他涉疫地区")
    resident = task.resident
    _negative(resident, cst(2022, 11, 10, 12))   # day 1
    _negative(resident, cst(2022, 11, 11, 9))    # day 2
    # day 4 (13 Nov) passes without a test; its deadline is the end of day 5 (grace for the lab)
    day_4_deadline = cst(2022, 11, 15)
    assert _open_type_4(resident, day_4_deadline - SECOND) == []
    (case,) = _open_type_4(resident, day_4_deadline)
    assert case.raised_at == day_4_deadline
    # the day-7 test (sampled after the day-4 trigger) is received: type 4 is lifted by the engine
    _negative(resident, cst(2022, 11, 16, 9))
    assert _open_type_4(resident, cst(2022, 11, 16, 18)) == []
    # and the community's popup 3 is not touched by the engine
    popup.refresh_from_db()
    assert popup.is_open


def test_tests_on_time_raise_nothing():
    popup = PopupCaseFactory(popup_type=3, raised_at=AT - dt.timedelta(days=1))
    task = ClearanceTaskFactory(resident=popup.resident, popup=popup)
    worker = WorkerFactory(communities=[task.community])
    with clock.frozen_at(AT):
        services.clearance_investigate(task=task, actor=worker, outcome=ClearanceTask.Outcome.LISTED_AREA,
                                       reason="其他涉疫地区")
    for sampled in (cst(2022, 11, 10, 12), cst(2022, 11, 11, 9), cst(2022, 11, 13, 9), cst(2022, 11, 16, 9)):
        _negative(task.resident, sampled)
    assert _open_type_4(task.resident, cst(2022, 11, 19)) == []
