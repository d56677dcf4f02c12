"""Tasks by urgency: codes and emergency notices never wait behind bulk SMS, engine work never
waits behind HTTP calls; every task of the project lands on a queue some worker consumes."""

from unittest import mock

import pytest
from django.conf import settings

from healthkit import queues, tasks
from healthkit.celery import app
from healthkit.sms import sms_enqueue
from tests.factories import make_phone

OURS = ("healthkit.", "appeals.", "venues.", "communities.")


def _queue_of(name: str) -> str:
    route = app.amqp.router.route({}, name, args=(), kwargs={})
    return route["queue"].name


def test_every_task_is_on_a_known_queue():
    app.loader.import_default_modules()
    names = [n for n in app.tasks if n.startswith(OURS)]
    assert len(names) > 10
    assert {_queue_of(n) for n in names} <= set(queues.QUEUES)
    assert settings.CELERY_TASK_DEFAULT_QUEUE == queues.SWEEPS


def test_engine_outbox_and_sms_are_apart():
    assert _queue_of("healthkit.tasks.engine_evaluate_work") == "engine"
    assert _queue_of("healthkit.tasks.engine_evaluate_residents") == "engine"
    assert _queue_of("healthkit.tasks.engine_work_due") == "engine"
    assert _queue_of("healthkit.tasks.outbox_deliver_endpoint") == "outbox"
    assert _queue_of("healthkit.tasks.sms_deliver") == "notifications"
    assert _queue_of("appeals.clearance.tasks.clearance_send_link") == "notifications"
    assert _queue_of("appeals.tasks.appeal_sla_sweep") == "sweeps"


@pytest.mark.parametrize(("purpose", "queue"), [
    ("appeal_code", "codes"), ("login_code", "codes"), ("emergency_notice", "codes"),
    ("clearance_confirm", "notifications"), ("appeal_evidence_request", "notifications"),
])
def test_sms_queue_by_purpose(purpose, queue):
    assert queues.sms_queue(purpose) == queue


@pytest.mark.django_db
def test_a_code_is_published_on_the_codes_queue(django_capture_on_commit_callbacks):
    with mock.patch.object(tasks.sms_deliver, "apply_async") as publish, \
            django_capture_on_commit_callbacks(execute=True):
        code = sms_enqueue(phone=make_phone(), body="验证码 123456", purpose="appeal_code", idempotency_key="c1")
        link = sms_enqueue(phone=make_phone(), body="link", purpose="clearance_confirm", idempotency_key="l1")
    sent = {c.kwargs["args"][0]: c.kwargs["queue"] for c in publish.call_args_list}
    assert sent == {code.pk: "codes", link.pk: "notifications"}


@pytest.mark.django_db
def test_the_due_sweep_drains_each_queue_separately(sms_outbox, django_capture_on_commit_callbacks):
    with mock.patch.object(tasks.sms_deliver, "apply_async"), django_capture_on_commit_callbacks(execute=True):
        for i in range(5):
            sms_enqueue(phone=make_phone(), body=f"link {i}", purpose="clearance_confirm", idempotency_key=f"l{i}")
        sms_enqueue(phone=make_phone(), body="验证码 654321", purpose="appeal_code", idempotency_key="c2")
    with mock.patch.object(tasks.sms_drain, "apply_async") as drain:
        assert tasks.sms_deliver_due() == 6
    assert sorted((c.kwargs["args"], c.kwargs["queue"]) for c in drain.call_args_list) == [
        ((False,), "notifications"), ((True,), "codes")]
    assert tasks.sms_drain(True) == 1 and [m.body for m in sms_outbox.outbox] == ["验证码 654321"]
    assert tasks.sms_drain(False) == 5


def test_an_evaluation_message_shows_how_many_residents_not_the_ids(monkeypatch):
    # given the broker's send replaced by a recorder (not eager: the message is built)
    sent: dict = {}
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setattr(app, "send_task", lambda name, args=None, kwargs=None, **options: sent.update(
        options, name=name, args=args))
    # when an evaluation of 1,000 residents is published
    tasks.engine_evaluate_residents.delay(list(range(1, 1001)))
    # then the task gets every id, and its logged arguments are a count (no walk over the list)
    assert sent["name"] == "healthkit.tasks.engine_evaluate_residents"
    assert sent["args"] == (list(range(1, 1001)),)
    assert sent["argsrepr"] == "([1000 resident ids],)"
