"""Daily relief: residents outside the city for more than 30 days, with an open popup and a wish
to return (from an appeal or their confirmation), become priority cases of their community."""

import datetime as dt

import pytest
from django.utils import timezone

from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceTask
from appeals.models import Appeal
from healthkit.models import PopupCase
from tests.factories import PopupCaseFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory

pytestmark = pytest.mark.django_db


def _days_ago(days: int) -> dt.date:
    """A city date `days` before today, read when the test runs (not when the module is imported:
    a run that crosses midnight in Beijing would be a day off)."""
    return timezone.localdate() - dt.timedelta(days=days)


def _stranded_appeal(days: int, **kwargs) -> Appeal:
    defaults = {"status": Appeal.Status.IN_PROGRESS, "routed_community": None, "routed_at": None,
                "currently_outside_city": True, "wishes_to_return": True,
                "outside_since": _days_ago(days)}
    return RoutedAppealFactory(**{**defaults, **kwargs})


def test_selection(sms_outbox, django_capture_on_commit_callbacks):
    chosen = _stranded_appeal(35)
    # not chosen: 20 days out, no wish to return, back in the city, popup already lifted, appeal closed
    _stranded_appeal(20)
    _stranded_appeal(40, wishes_to_return=False)
    _stranded_appeal(40, currently_outside_city=False)
    _stranded_appeal(40, popup=PopupCaseFactory(state=PopupCase.State.LIFTED, lifted_at=timezone.now()))
    _stranded_appeal(40, status=Appeal.Status.CLOSED)

    with django_capture_on_commit_callbacks(execute=True):
        result = services.clearance_relief_sweep()

    assert result.prioritised == 0
    (task,) = ClearanceTask.objects.filter(pk__in=result.created)
    assert (task.appeal, task.popup, task.community) == (chosen, chosen.popup, chosen.resident.community)
    assert task.origin == ClearanceTask.Origin.STRANDED and task.priority == ClearanceTask.Priority.HIGH
    assert task.outside_since == chosen.outside_since and task.wishes_to_return
    assert task.events.filter(kind=ClearanceEvent.Kind.OPENED, actor_label="relief").exists()
    assert len(sms_outbox.outbox) == 1


def test_boundary_is_more_than_30_days(settings):
    _stranded_appeal(30)
    assert services.clearance_relief_sweep().created == []
    _stranded_appeal(31)
    assert len(services.clearance_relief_sweep().created) == 1


def test_an_open_task_is_raised_to_priority_not_duplicated():
    appeal = _stranded_appeal(45)
    task = services.clearance_open_for_appeal(appeal=appeal)
    assert task.priority == ClearanceTask.Priority.NORMAL

    result = services.clearance_relief_sweep()

    task.refresh_from_db()
    assert result.prioritised == 1 and result.created == []
    assert task.priority == ClearanceTask.Priority.HIGH
    assert task.events.filter(kind=ClearanceEvent.Kind.PRIORITISED).count() == 1
    # a rerun changes nothing
    again = services.clearance_relief_sweep()
    assert (again.prioritised, again.created) == (0, [])


def test_wish_from_the_residents_confirmation_counts():
    task = ClearanceTaskFactory(outside_since=_days_ago(50), wishes_to_return=True)
    ClearanceTaskFactory(outside_since=_days_ago(50), wishes_to_return=False)
    result = services.clearance_relief_sweep()
    task.refresh_from_db()
    assert result.prioritised == 1 and task.priority == ClearanceTask.Priority.HIGH


def test_a_rejected_resident_still_stranded_gets_a_new_priority_task():
    task = ClearanceTaskFactory(outside_since=_days_ago(50), wishes_to_return=True)
    services.clearance_reject(task=task, actor=None, reason="当地有疫情", next_step="wait_7_days")
    result = services.clearance_relief_sweep()
    (new,) = ClearanceTask.objects.filter(pk__in=result.created)
    assert new.popup_id == task.popup_id and new.origin == ClearanceTask.Origin.STRANDED


def test_emergencies_keep_their_priority():
    appeal = _stranded_appeal(45, priority=1)
    task = services.clearance_open_for_appeal(appeal=appeal)
    services.clearance_relief_sweep()
    task.refresh_from_db()
    assert task.priority == ClearanceTask.Priority.EMERGENCY
