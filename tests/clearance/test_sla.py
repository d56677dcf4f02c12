"""SLA escalation of community tasks, set-based like the appeals' sweep."""

import datetime as dt

import pytest
from django.utils import timezone

from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceTask
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory

pytestmark = pytest.mark.django_db


def test_overdue_open_tasks_are_escalated_once():
    now = timezone.now()
    late = ClearanceTaskFactory(sla_due_at=now - dt.timedelta(minutes=1))
    on_time = ClearanceTaskFactory(sla_due_at=now + dt.timedelta(hours=1))
    decided = ClearanceTaskFactory(sla_due_at=now - dt.timedelta(hours=1), popup__popup_type=1)
    services.clearance_accept(task=decided, actor=None, actor_label="clearance", reason="已核实")

    assert services.clearance_sla_sweep(at=now) == 1
    assert services.clearance_sla_sweep(at=now) == 0

    late.refresh_from_db()
    on_time.refresh_from_db()
    assert late.escalated_at == now and late.sla_breached_at == now
    assert on_time.escalated_at is None
    assert ClearanceEvent.objects.filter(kind=ClearanceEvent.Kind.ESCALATED).count() == 1


def test_emergency_appeals_get_the_short_sla(settings):
    settings.CLEARANCE_SLA_EMERGENCY_HOURS = 4
    task = services.clearance_open_for_appeal(appeal=RoutedAppealFactory(priority=1))
    assert task.priority == ClearanceTask.Priority.EMERGENCY
    assert task.sla_due_at - task.created_at == dt.timedelta(hours=4)


def test_tasks_in_measures_are_not_escalated():
    now = timezone.now()
    task = ClearanceTaskFactory(sla_due_at=now - dt.timedelta(hours=1))
    ClearanceTask.objects.filter(pk=task.pk).update(state=ClearanceTask.State.MEASURES)
    assert services.clearance_sla_sweep(at=now) == 0
