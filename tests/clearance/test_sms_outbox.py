"""Clearance SMS go through the transactional outbox: retried with backoff, never sent twice,
delivery status recorded."""

import datetime as dt

import pytest
from django.db import transaction

from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from appeals.clearance.tasks import clearance_open_for_appeal
from healthkit import tasks
from healthkit.models import SmsMessage
from healthkit.sms import sms_deliver
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory

pytestmark = pytest.mark.django_db


def _due_now(message: SmsMessage) -> None:
    SmsMessage.objects.filter(pk=message.pk).update(next_attempt_at=message.created_at - dt.timedelta(seconds=1))


def test_gateway_failures_are_retried_with_backoff_and_sent_once(sms_outbox, django_capture_on_commit_callbacks):
    sms_outbox.fail_next = 2
    appeal = RoutedAppealFactory()
    with django_capture_on_commit_callbacks(execute=True):
        clearance_open_for_appeal.delay(appeal.pk)
    message = SmsMessage.objects.get(purpose="clearance_confirm")
    assert (message.state, message.attempts) == (SmsMessage.State.FAILED, 1)
    first_backoff = message.next_attempt_at - message.created_at
    assert tasks.sms_deliver_due() == 0                      # backoff not passed: nothing is sent
    _due_now(message)
    assert tasks.sms_deliver_due() == 1
    message.refresh_from_db()
    assert (message.state, message.attempts) == (SmsMessage.State.FAILED, 2)
    assert message.next_attempt_at - message.created_at > first_backoff  # backing off further
    _due_now(message)
    tasks.sms_deliver_due()
    message.refresh_from_db()
    assert (message.state, message.attempts) == (SmsMessage.State.SENT, 3)
    assert message.sent_at is not None and message.provider_id
    assert len(sms_outbox.outbox) == 1
    # a stray redelivery of the same row, and a rerun of the job, send nothing more
    sms_deliver(message_id=message.pk)
    with django_capture_on_commit_callbacks(execute=True):
        clearance_open_for_appeal.delay(appeal.pk)
    assert len(sms_outbox.outbox) == 1
    assert SmsMessage.objects.filter(purpose="clearance_confirm").count() == 1


def test_a_decision_rolled_back_sends_nothing(sms_outbox, django_capture_on_commit_callbacks):
    task = ClearanceTaskFactory(popup__popup_type=1)
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                services.clearance_accept(task=task, actor=None, actor_label="clearance", reason="已核实")
                raise RuntimeError("crash after the decision")
        except RuntimeError:
            pass
    task.refresh_from_db()
    assert task.state == ClearanceTask.State.OPEN
    assert sms_outbox.outbox == [] and not SmsMessage.objects.exists()


def test_each_decision_message_has_its_own_idempotency_key(sms_outbox, django_capture_on_commit_callbacks):
    task = ClearanceTaskFactory(popup__popup_type=1)
    with django_capture_on_commit_callbacks(execute=True):
        services.clearance_link_issue(task=task)
        services.clearance_accept(task=task, actor=None, actor_label="clearance", reason="已核实")
    keys = [m.idempotency_key for m in sms_outbox.outbox]
    assert len(keys) == 2 and len(set(keys)) == 2
    assert all(k.startswith(f"clearance:{task.pk}:") for k in keys)
    assert set(SmsMessage.objects.values_list("state", flat=True)) == {SmsMessage.State.SENT}
