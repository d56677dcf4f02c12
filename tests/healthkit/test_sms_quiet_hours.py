"""Non-urgent news written at night waits until morning; urgent news (and the day) goes at once."""

import datetime as dt

import pytest
from django.utils import timezone

from healthkit import notify, sms
from healthkit.models import SmsMessage
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.SMS_QUIET_HOURS_START, settings.SMS_QUIET_HOURS_END = 22, 7


def test_quiet_hours_end_is_the_next_morning():
    assert notify.quiet_hours_end(cst(2022, 11, 20, 23, 30)) == cst(2022, 11, 21, 7, 0)
    assert notify.quiet_hours_end(cst(2022, 11, 21, 3, 0)) == cst(2022, 11, 21, 7, 0)
    assert notify.quiet_hours_end(cst(2022, 11, 21, 7, 0)) is None
    assert notify.quiet_hours_end(cst(2022, 11, 21, 21, 59)) is None


def test_quiet_hours_can_be_turned_off(settings):
    settings.SMS_QUIET_HOURS_START = settings.SMS_QUIET_HOURS_END = 0
    assert notify.quiet_hours_end(cst(2022, 11, 20, 23, 30)) is None


def _queue(key: str, *, urgent: bool, at: dt.datetime) -> SmsMessage:
    return notify.resident_sms(phone="13800138000", key=key, purpose="test", urgent=urgent, at=at,
                               compose=lambda: "news")


def test_a_held_message_is_not_sent_before_its_time(sms_outbox, django_capture_on_commit_callbacks):
    later = timezone.now() + dt.timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        message = sms.sms_enqueue(phone="13800138000", body="news", purpose="test", idempotency_key="held",
                                  not_before=later)
    assert sms_outbox.outbox == []
    # neither the delivery task nor the due sweep sends it before its time
    assert sms.sms_deliver(message_id=message.pk) is None
    assert message.pk not in sms.sms_due_ids()
    assert SmsMessage.objects.get(pk=message.pk).state == SmsMessage.State.QUEUED
    earlier = timezone.now() - dt.timedelta(seconds=1)
    SmsMessage.objects.filter(pk=message.pk).update(not_before=earlier, next_attempt_at=earlier)
    assert message.pk in sms.sms_due_ids()
    assert sms.sms_deliver(message_id=message.pk).state == SmsMessage.State.SENT
    assert [m.body for m in sms_outbox.outbox] == ["news"]


def test_non_urgent_news_at_night_gets_a_not_before(sms_outbox):
    message = _queue("night", urgent=False, at=cst(2022, 11, 20, 23, 30))
    assert message.not_before == cst(2022, 11, 21, 7, 0)


def test_urgent_news_at_night_goes_at_once():
    message = _queue("urgent", urgent=True, at=cst(2022, 11, 20, 23, 30))
    assert message.not_before is None


def test_daytime_news_goes_at_once():
    message = _queue("day", urgent=False, at=cst(2022, 11, 21, 10, 0))
    assert message.not_before is None
