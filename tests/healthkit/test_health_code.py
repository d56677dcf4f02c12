import datetime as dt

import pytest
from django.utils import timezone

from healthkit.models import HealthStatusOrder, TestResult
from healthkit.selectors import health_code_at
from healthkit.services import popup_lift
from tests.factories import PopupCaseFactory, ResidentFactory, TestResultFactory

pytestmark = pytest.mark.django_db


def test_green_without_anything():
    code = health_code_at(ResidentFactory())
    assert (code.color, code.popup_types) == ("green", [])


def test_popup_shows_over_green_until_lifted():
    case = PopupCaseFactory(popup_type=4, raised_at=timezone.now() - dt.timedelta(hours=2))
    assert health_code_at(case.resident).popup_types == [4]
    lifted_at = timezone.now() - dt.timedelta(hours=1)
    popup_lift(case=case, actor_label="engine", reason="negative result", at=lifted_at)
    assert health_code_at(case.resident).popup_types == []
    # Asking about an instant before the lift still shows it: history is kept.
    assert health_code_at(case.resident, lifted_at - dt.timedelta(minutes=1)).popup_types == [4]


def test_positive_latest_result_turns_red():
    resident = ResidentFactory()
    TestResultFactory(resident=resident, result=TestResult.Outcome.POSITIVE)
    assert health_code_at(resident).color == "red"


def test_yellow_order_in_force_and_red_beats_yellow():
    resident = ResidentFactory()
    now = timezone.now()
    HealthStatusOrder.objects.create(resident=resident, status="yellow", starts_at=now - dt.timedelta(days=1),
                                     ends_at=now + dt.timedelta(days=6), reason="居家观察")
    assert health_code_at(resident).color == "yellow"
    assert health_code_at(resident, now + dt.timedelta(days=7)).color == "green"
    HealthStatusOrder.objects.create(resident=resident, status="red", starts_at=now, reason="集中观察")
    assert health_code_at(resident).color == "red"
