"""SMS that died are not lost for good: a person sends them again from the admin after an
outage, and the failure log says what the gateway answered. A message whose one-time code or
link was wiped when it was given up is not re-sent masked: it asks for a new code or link."""

import io
import urllib.error

import pytest
from django.urls import reverse

from healthkit import outbound, sms
from healthkit.models import SmsMessage
from tests.factories import UserFactory, make_phone

pytestmark = pytest.mark.django_db


def _kill(message: SmsMessage) -> None:
    SmsMessage.objects.filter(pk=message.pk).update(state=SmsMessage.State.FAILED, attempts=sms.MAX_ATTEMPTS - 1)


def _gateway_answers(monkeypatch, code: int) -> None:
    def answer(*args, **kwargs):
        raise urllib.error.HTTPError("http://gateway.invalid/", code, "err", {}, io.BytesIO(b"secret body"))

    monkeypatch.setattr(outbound, "open_url", answer)


def test_gateway_status_code_is_recorded_and_logged(settings, monkeypatch, caplog):
    settings.SMS_BACKEND = "healthkit.sms.HttpBackend"
    settings.SMS_HTTP_URL = "http://gateway.invalid/"
    message = sms.sms_enqueue(phone=make_phone(), body="plain news", purpose="appeal_filed", idempotency_key="k1")
    _gateway_answers(monkeypatch, 503)
    sms.sms_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.state == SmsMessage.State.FAILED and message.last_error == "HTTP 503"
    assert "HTTP 503" in caplog.text and "secret body" not in caplog.text


def test_http_backend_reports_the_status_code(settings, monkeypatch):
    settings.SMS_HTTP_URL = "http://127.0.0.1:9/"

    def refuse(*args, **kwargs):
        raise urllib.error.HTTPError("http://127.0.0.1:9/", 500, "boom", {}, io.BytesIO(b"{}"))

    monkeypatch.setattr(outbound, "open_url", refuse)
    with pytest.raises(sms.SmsSendError, match="HTTP 500"):
        sms.HttpBackend().send(phone=make_phone(), body="x", idempotency_key="k")


def test_dead_sms_are_sent_again_once_and_masked_credentials_are_not(sms_outbox, monkeypatch):
    news = sms.sms_enqueue(phone=make_phone(), body="Your appeal was routed", purpose="appeal_routed",
                           idempotency_key="news-1")
    link = sms.sms_enqueue(phone=make_phone(), body="Open https://example.org/clearance/r/AbCdEfGhIjKlMnOpQrStUv/ now",
                           purpose="clearance_link", idempotency_key="link-1")
    for message in (news, link):
        _kill(message)
        monkeypatch.setattr(sms, "get_backend", lambda: _FailingRaise())
        sms.sms_deliver(message_id=message.pk)
        message.refresh_from_db()
        assert message.state == SmsMessage.State.DEAD
    assert link.pending_encrypted == "" and sms.MASKED in link.body  # given up: the live link is gone
    monkeypatch.undo()
    sent_before = len(sms_outbox.outbox)

    result = sms.sms_requeue(messages=SmsMessage.objects.filter(pk__in=[news.pk, link.pk]))
    for message_id in (news.pk, link.pk):
        sms.sms_deliver(message_id=message_id)
    sms.sms_requeue(messages=SmsMessage.objects.filter(pk=news.pk))  # a second click finds nothing dead: no second text

    assert (result.requeued, result.needs_new_credential) == (1, 1)
    news.refresh_from_db(), link.refresh_from_db()
    assert news.state == SmsMessage.State.SENT and link.state == SmsMessage.State.DEAD
    assert [m.body for m in sms_outbox.outbox[sent_before:]] == ["Your appeal was routed"]


class _FailingRaise:
    def send(self, *, phone: str, body: str, idempotency_key: str) -> str:
        raise sms.SmsSendError("HTTP 500")


def test_admin_action_requeues_for_an_administrator(client, sms_outbox):
    admin_user = UserFactory(role="administrator", is_staff=True, is_superuser=True)
    message = sms.sms_enqueue(phone=make_phone(), body="Your appeal was closed", purpose="appeal_closed",
                              idempotency_key="news-2")
    SmsMessage.objects.filter(pk=message.pk).update(state=SmsMessage.State.DEAD, attempts=sms.MAX_ATTEMPTS)
    client.force_login(admin_user)
    response = client.post(reverse("admin:healthkit_smsmessage_changelist"),
                           {"action": "requeue", "_selected_action": [message.pk], "confirm": "yes"}, follow=True)
    message.refresh_from_db()
    assert response.status_code == 200
    assert message.state in (SmsMessage.State.QUEUED, SmsMessage.State.SENT) and message.attempts <= 1
