"""A routed appeal opens the community's confirmation task and texts the resident a link."""

import pytest
from django.conf import settings

from appeals.clearance.models import ClearanceEvent, ClearanceLink, ClearanceTask
from appeals.clearance.tasks import clearance_open_for_appeal
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory

pytestmark = pytest.mark.django_db


def test_routed_appeal_opens_task_and_sends_one_link(sms_outbox, django_capture_on_commit_callbacks):
    appeal = RoutedAppealFactory()

    with django_capture_on_commit_callbacks(execute=True):
        task_id = clearance_open_for_appeal.delay(appeal.pk).get()

    task = ClearanceTask.objects.get(pk=task_id)
    assert (task.appeal, task.popup, task.community) == (appeal, appeal.popup, appeal.routed_community)
    assert task.state == ClearanceTask.State.OPEN
    assert task.sla_due_at is not None
    assert ClearanceLink.objects.filter(task=task).count() == 1
    assert len(sms_outbox.outbox) == 1
    body = sms_outbox.outbox[0].body
    # names the official site, carries only the opaque token
    assert f"{settings.OFFICIAL_SITE_URL}/clearance/r/" in body
    assert appeal.resident.name not in body


def test_rerun_is_idempotent(sms_outbox, django_capture_on_commit_callbacks):
    appeal = RoutedAppealFactory()

    with django_capture_on_commit_callbacks(execute=True):
        first = clearance_open_for_appeal.delay(appeal.pk).get()
        second = clearance_open_for_appeal.delay(appeal.pk).get()

    assert first == second
    assert ClearanceTask.objects.count() == 1
    assert len(sms_outbox.outbox) == 1


def test_appeal_joins_task_the_sweep_already_opened(sms_outbox):
    task = ClearanceTaskFactory()
    appeal = RoutedAppealFactory(resident=task.resident, popup=task.popup, priority=1)

    task_id = clearance_open_for_appeal.delay(appeal.pk).get()

    task.refresh_from_db()
    assert task_id == task.pk
    assert task.appeal == appeal and task.priority == 1
    assert task.events.filter(kind=ClearanceEvent.Kind.APPEAL_JOINED).exists()


def test_missing_or_unrouted_appeal_does_nothing():
    assert clearance_open_for_appeal.delay(999999).get() is None
    appeal = RoutedAppealFactory(status="closed", routed_community=None)
    assert clearance_open_for_appeal.delay(appeal.pk).get() is None
    assert not ClearanceTask.objects.exists()


def test_rerouted_appeal_moves_the_open_task(django_capture_on_commit_callbacks):
    from appeals.clearance.services import clearance_open_for_appeal as open_for
    from tests.factories import CommunityFactory

    appeal = RoutedAppealFactory()
    task = open_for(appeal=appeal)
    other = CommunityFactory()
    appeal.routed_community = other
    appeal.save(update_fields=["routed_community"])

    again = open_for(appeal=appeal)

    assert again.pk == task.pk and again.community == other
    assert again.events.filter(kind=ClearanceEvent.Kind.REROUTED).exists()
