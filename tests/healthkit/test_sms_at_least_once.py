"""The SMS contract: at least once to the gateway with one idempotency key; a send whose worker
died is tried again after its lease; without a de-duplicating gateway an unknown outcome is
never re-sent (marked dead for a person), so no resident is texted twice."""

import datetime as dt
import urllib.error

import pytest
from django.utils import timezone

from healthkit import sms, tasks
from healthkit.models import SmsMessage
from tests.factories import make_phone

pytestmark = pytest.mark.django_db


def _message(key="k"):
    return sms.sms_enqueue(phone=make_phone(), body="link", purpose="clearance_confirm", idempotency_key=key)


def _worker_died_mid_send(message):
    """Claimed (the POST may have gone out), then the worker was killed before recording."""
    assert sms.sms_claim(message_id=message.pk) is not None
    SmsMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


def test_a_send_whose_worker_died_is_retried_with_the_same_key(sms_outbox):
    message = _message()
    _worker_died_mid_send(message)
    assert sms.sms_due_ids() == [message.pk]
    tasks.sms_drain(False)
    message.refresh_from_db()
    assert message.state == SmsMessage.State.SENT and message.attempts == 2
    assert [m.idempotency_key for m in sms_outbox.outbox] == ["k"]


def test_while_leased_nobody_else_sends_it(sms_outbox):
    message = _message()
    assert sms.sms_claim(message_id=message.pk) is not None
    assert sms.sms_deliver(message_id=message.pk) is None and sms.sms_due_ids() == []
    assert sms_outbox.outbox == []


def test_without_gateway_dedup_an_unknown_outcome_is_never_resent(settings, sms_outbox):
    settings.SMS_GATEWAY_DEDUPLICATES = False
    died = _message("died")
    _worker_died_mid_send(died)
    tasks.sms_drain(False)
    died.refresh_from_db()
    assert died.state == SmsMessage.State.DEAD and died.last_error.startswith("outcome unknown")

    timed_out = _message("slow")

    def slow(**kwargs):
        raise sms.SmsSendError("URLError") from urllib.error.URLError(TimeoutError("timed out"))

    sms_outbox.send, original = slow, sms_outbox.send
    try:
        sms.sms_deliver(message_id=timed_out.pk)
    finally:
        sms_outbox.send = original
    timed_out.refresh_from_db()
    assert timed_out.state == SmsMessage.State.DEAD and "outcome unknown" in timed_out.last_error
    # a refusal the gateway answered is still retried: nothing reached anybody
    refused = _message("refused")
    sms_outbox.fail_next = 1
    sms.sms_deliver(message_id=refused.pk)
    refused.refresh_from_db()
    assert refused.state == SmsMessage.State.FAILED
    assert sms_outbox.outbox == []
