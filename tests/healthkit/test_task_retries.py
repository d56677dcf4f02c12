"""Every Celery task retries a lost database connection with backoff (healthkit/taskbase.py):
a connection killed mid-task (a failover, pg_terminate_backend) costs a few seconds, not the
beat job's catch-up, and never a doubled SMS."""

import psycopg
import pytest
from django.conf import settings
from django.db import InterfaceError, OperationalError

from healthkit import sms, tasks
from healthkit.celery import app
from healthkit.models import SmsMessage
from tests.factories import make_phone

PROJECT_APPS = ("healthkit.", "appeals.", "venues.", "communities.")


def _project_tasks():
    app.loader.import_default_modules()
    return sorted((name, task) for name, task in app.tasks.items() if name.startswith(PROJECT_APPS))


def test_every_task_retries_a_lost_connection_with_bounded_backoff():
    found = _project_tasks()
    assert len(found) >= 20
    visibility = settings.CELERY_TASK_TIME_LIMIT + 120
    for name, task in found:
        assert {OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError} <= set(
            getattr(task, "autoretry_for", ())), name
        assert task.retry_backoff and task.retry_backoff_max <= 60 < visibility, name
        assert 1 <= task.max_retries <= 10, name
        assert task.acks_late, name


@pytest.mark.django_db
def test_sms_task_whose_connection_drops_is_retried_and_sends_once(monkeypatch, sms_outbox):
    message = sms.sms_enqueue(phone=make_phone(), body="您的申诉已受理", purpose="appeal_filed",
                              idempotency_key="retry-test-1")
    real, calls = sms.sms_deliver, []

    def drops_first(*, message_id):
        calls.append(message_id)
        if len(calls) == 1:
            raise OperationalError("terminating connection due to administrator command")
        return real(message_id=message_id)

    monkeypatch.setattr(sms, "sms_deliver", drops_first)

    result = tasks.sms_deliver.apply(args=(message.pk,), throw=False)  # eager: the retry runs at once

    assert result.successful() and calls == [message.pk, message.pk]
    assert SmsMessage.objects.get(pk=message.pk).state == SmsMessage.State.SENT
    assert [m.idempotency_key for m in sms_outbox.outbox] == ["retry-test-1"]
