"""Tasks left open on an appeal the hotline had closed (before a close withdrew them) are repaired
by migration clearance 0009 as a close does now: withdrawn, or going on without the appeal."""

import importlib

import pytest
from django.db import connection
from django.utils import timezone

from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceLink, ClearanceTask
from appeals.models import Appeal
from tests.factories import PopupCaseFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory

pytestmark = pytest.mark.django_db

REPAIR = importlib.import_module("appeals.clearance.migrations.0009_withdraw_tasks_of_closed_appeals").SQL


def _close_behind_its_back(appeal: Appeal) -> None:
    Appeal.objects.filter(pk=appeal.pk).update(status=Appeal.Status.CLOSED, outcome="rejected",
                                               close_reason="不予受理", closed_at=timezone.now())


def test_the_repair_withdraws_the_appeal_s_own_task_and_detaches_the_community_s():
    appeal = RoutedAppealFactory(popup=None)
    appeal.popup = PopupCaseFactory(resident=appeal.resident, popup_type=1)
    appeal.save(update_fields=["popup"])
    own = services.clearance_open_for_appeal(appeal=appeal)
    sweep_task = ClearanceTaskFactory()
    other = RoutedAppealFactory(resident=sweep_task.resident, popup=sweep_task.popup)
    services.clearance_open_for_appeal(appeal=other)
    _close_behind_its_back(appeal)
    _close_behind_its_back(other)

    with connection.cursor() as cursor:
        cursor.execute(REPAIR)

    own.refresh_from_db()
    sweep_task.refresh_from_db()
    assert own.state == ClearanceTask.State.CLOSED and own.closed_at
    assert own.events.get(kind=ClearanceEvent.Kind.WITHDRAWN).data["reference"] == appeal.reference
    assert not ClearanceLink.objects.filter(task=own, used_at__isnull=True, revoked_at__isnull=True).exists()
    assert sweep_task.is_open and sweep_task.appeal is None
    assert sweep_task.events.filter(kind=ClearanceEvent.Kind.APPEAL_CLOSED).exists()
