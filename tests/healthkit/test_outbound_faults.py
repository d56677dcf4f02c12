"""The SMS gateway and the ticket systems' endpoints misbehaving at the HTTP level (one boundary,
healthkit.outbound): a malformed status line, a 2xx with an unreadable body, an answer
trickling in, TLS spoken to a plain server, a closed port, a URL without a scheme (redirects:
test_outbound_http.py). Each is a recorded try with backoff and, in the end, a dead row an
operator sees; the SMS is never texted twice by a gateway that does not de-duplicate; no call
outlives its deadline.

Before: a malformed status line escaped the outbox's error handling (the endpoint's run stopped,
no try was recorded, the row was retried every lease forever and never died); a 2xx SMS answer
that was not a JSON object was taken for a refusal and sent again; an answer trickling a byte at
a time held a call for as long as it trickled."""

import datetime as dt
import socket
import threading
import time

import pytest
from django.utils import timezone

from healthkit import outbound, outbox, sms, tasks
from healthkit.models import OutboxAttempt, OutboxDelivery, SmsMessage
from tests.factories import make_phone
from tests.factories.healthkit import DownstreamEndpointFactory
from tests.healthkit.test_outbox_delivery import _make_due, _raise_and_lift

pytestmark = pytest.mark.django_db

ANSWERS = {
    "/garbage": [b"HELLO THERE\r\n\r\n"],
    "/ok": [b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"id":"x1"}'],
    "/unreadable": [b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<html>"],
    "/list": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"],
    "/trickle": [bytes([b]) for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"],
}


class Stub:
    """A loopback server answering by path, byte for byte as ANSWERS says; records each request."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.seen: list[tuple[str, str]] = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                method, path = data.split(b" ", 2)[:2]
                self.seen.append((method.decode(), path.decode()))
                for piece in ANSWERS.get(path.decode(), [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"]):
                    conn.sendall(piece)
                    if len(piece) == 1:
                        time.sleep(0.2)
            except (OSError, ValueError):
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def stub():
    server = Stub()
    yield server
    server.close()


def test_an_endpoint_answering_garbage_is_a_failed_try_then_a_dead_row_and_blocks_nobody(
        stub, django_capture_on_commit_callbacks):
    broken = DownstreamEndpointFactory(name="broken", url=f"{stub.base}/garbage")
    working = DownstreamEndpointFactory(name="working", url=f"{stub.base}/ok")
    _raise_and_lift(django_capture_on_commit_callbacks)
    # the working endpoint got both records; the broken one's raise failed once, recorded, backing off
    assert set(OutboxDelivery.objects.filter(endpoint=working).values_list("state", flat=True)) == {"delivered"}
    first = OutboxDelivery.objects.filter(endpoint=broken).order_by("id").first()
    assert (first.state, first.attempts, first.last_error) == ("failed", 1, "BadStatusLine")
    assert first.next_attempt_at > timezone.now() + dt.timedelta(seconds=20)
    assert list(OutboxAttempt.objects.filter(delivery=first).values_list("ok", "error")) == [(False, "BadStatusLine")]
    # and after the last attempt it is dead, with the reason, for an operator to see
    OutboxDelivery.objects.filter(pk=first.pk).update(attempts=outbox.MAX_ATTEMPTS - 1)
    _make_due(broken)
    tasks.outbox_dispatch_due()
    first.refresh_from_db()
    assert (first.state, first.last_error) == ("dead", "BadStatusLine")


def test_an_answer_trickling_in_is_cut_at_the_deadline(stub, settings, monkeypatch):
    monkeypatch.setattr(outbound, "DEFAULT_DEADLINE", 1.0)
    started = time.monotonic()
    with pytest.raises(outbox.DeliveryError, match="deadline 1 s"):
        outbox.post_json(url=f"{stub.base}/trickle", body={}, token="", idempotency_key="k")
    assert time.monotonic() - started < 3
    settings.SMS_HTTP_URL = f"{stub.base}/trickle"
    with pytest.raises(sms.SmsSendError) as raised:
        sms.HttpBackend().send(phone=make_phone(), body="x", idempotency_key="k")
    assert raised.value.maybe_sent is True  # it may have gone out: not sent again without de-duplication


@pytest.mark.parametrize("path", ["/unreadable", "/list"])
def test_a_gateway_2xx_with_an_unreadable_body_is_a_send_never_repeated(stub, settings, path):
    settings.SMS_BACKEND, settings.SMS_HTTP_URL = "healthkit.sms.HttpBackend", f"{stub.base}{path}"
    settings.SMS_GATEWAY_DEDUPLICATES = False
    message = sms.sms_enqueue(phone=make_phone(), body="plain news", purpose="appeal_filed", idempotency_key="k1")
    sms.sms_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.state == SmsMessage.State.SENT and message.provider_id == ""
    SmsMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    tasks.sms_drain(False)
    assert stub.seen == [("POST", path)]  # the resident got one text


def test_gateway_faults_retry_what_reached_nobody_and_hold_what_may_have(stub, settings):
    settings.SMS_BACKEND = "healthkit.sms.HttpBackend"
    settings.SMS_GATEWAY_DEDUPLICATES = False
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    cases = {
        "garbage": (f"{stub.base}/garbage", SmsMessage.State.DEAD, "outcome unknown: BadStatusLine"),
        "refused": (f"http://127.0.0.1:{port}/", SmsMessage.State.FAILED, "URLError (ConnectionRefusedError)"),
        "tls to a plain server": (f"https{stub.base[4:]}/ok", SmsMessage.State.FAILED, "URLError ("),
        "bad url": ("gateway.invalid/no-scheme", SmsMessage.State.FAILED, "invalid URL"),
    }
    for name, (url, state, error) in cases.items():
        settings.SMS_HTTP_URL = url
        message = sms.sms_enqueue(phone=make_phone(), body="plain news", purpose="appeal_filed", idempotency_key=name)
        sms.sms_deliver(message_id=message.pk)
        message.refresh_from_db()
        assert (message.state, message.last_error[:len(error)]) == (state, error), name
