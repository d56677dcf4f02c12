import pytest
from django.db import transaction

from healthkit import tasks
from healthkit.models import SmsMessage
from healthkit.sms import sms_deliver, sms_enqueue
from tests.factories import make_phone

pytestmark = pytest.mark.django_db


def test_message_is_sent_on_commit_exactly_once(sms_outbox, django_capture_on_commit_callbacks):
    phone = make_phone()
    with django_capture_on_commit_callbacks(execute=True):
        sms_enqueue(phone=phone, body="您的申诉已受理", purpose="test", idempotency_key="k1")
        sms_enqueue(phone=phone, body="您的申诉已受理", purpose="test", idempotency_key="k1")
    assert [m.body for m in sms_outbox.outbox] == ["您的申诉已受理"]
    message = SmsMessage.objects.get()
    assert message.state == SmsMessage.State.SENT and message.phone_masked.count("*") == 4
    assert phone not in message.phone_masked
    sms_deliver(message_id=message.pk)  # a rerun sends nothing
    assert len(sms_outbox.outbox) == 1


def test_rolled_back_transaction_sends_nothing(sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                sms_enqueue(phone=make_phone(), body="x", purpose="test", idempotency_key="k2")
                raise RuntimeError("boom")
        except RuntimeError:
            pass
    assert sms_outbox.outbox == [] and not SmsMessage.objects.exists()


def test_failure_is_retried_by_the_sweep_with_backoff(sms_outbox, django_capture_on_commit_callbacks):
    sms_outbox.fail_next = 1
    with django_capture_on_commit_callbacks(execute=True):
        message = sms_enqueue(phone=make_phone(), body="验证码 123456", purpose="otp", idempotency_key="k3")
    message.refresh_from_db()
    assert message.state == SmsMessage.State.FAILED and message.attempts == 1
    assert tasks.sms_deliver_due() == 0  # backoff not yet passed
    SmsMessage.objects.filter(pk=message.pk).update(next_attempt_at=message.created_at)
    assert tasks.sms_deliver_due() == 1
    message.refresh_from_db()
    assert message.state == SmsMessage.State.SENT and message.attempts == 2
    assert len(sms_outbox.outbox) == 1
