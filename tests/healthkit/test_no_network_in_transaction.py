"""No HTTP call to the SMS gateway or a downstream endpoint happens inside a database
transaction (a slow gateway held row locks and connections for its 10 s timeout)."""

from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

from healthkit import outbox, sms
from healthkit.models import OutboxAttempt, OutboxDelivery, OutboxRecord, SmsMessage
from tests.factories import PopupCaseFactory, make_phone
from tests.factories.healthkit import DownstreamEndpointFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_sms_is_sent_outside_any_transaction(sms_outbox):
    seen = []
    original = sms_outbox.send

    def send(**kwargs):
        seen.append(connection.in_atomic_block)
        # meanwhile the row is claimed: nobody else would send it
        assert SmsMessage.objects.get().state == SmsMessage.State.SENDING
        return original(**kwargs)

    with mock.patch.object(sms_outbox, "send", side_effect=send):
        # autocommit: the on-commit publish runs the (eager) delivery at once
        message = sms.sms_enqueue(phone=make_phone(), body="x", purpose="test", idempotency_key="t1")
    message.refresh_from_db()
    assert seen == [False] and message.state == SmsMessage.State.SENT


def test_outbox_post_is_outside_any_transaction():
    endpoint = DownstreamEndpointFactory(url="http://127.0.0.1:9/rail")
    case = PopupCaseFactory()
    record = OutboxRecord.objects.create(idempotency_key=f"popup-{case.pk}-raised", kind="raised", case=case,
                                         resident_id=case.resident_id, popup_type=3, at=timezone.now(), payload={})
    delivery = OutboxDelivery.objects.create(record=record, endpoint=endpoint, resident_id=case.resident_id)
    seen = []

    def post(**kwargs):
        seen.append(connection.in_atomic_block)
        return 200

    with mock.patch.object(outbox, "post_json", side_effect=post):
        assert outbox.deliver(delivery_id=delivery.pk).state == "delivered"
        assert outbox.deliver(delivery_id=delivery.pk) is None  # claimed once
    delivery.refresh_from_db()
    assert seen == [False] and delivery.state == "delivered" and delivery.attempts == 1
    assert OutboxAttempt.objects.filter(delivery=delivery, ok=True).count() == 1
