"""Calls to other systems (ticket-system endpoints, the SMS gateway) as a receiver may answer
them: a redirect is a failure that is retried, never followed (urllib turned the POST into a
bodiless GET, counted the landing page's 200 as delivered, and sent the bearer token to the
redirect's target), and a 429/503 with Retry-After is not tried again before it."""

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from healthkit import engine, sms
from healthkit.models import OutboxAttempt, OutboxDelivery
from tests.factories.healthkit import ArrivalFactory, DownstreamEndpointFactory, cst

pytestmark = pytest.mark.django_db
ARRIVED = cst(2022, 6, 1, 9)


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append(("POST", self.path, self.headers.get("Authorization")))
        if self.path.startswith("/moved"):
            self.send_response(302)
            self.send_header("Location", "/landing")
        elif self.path.startswith("/busy"):
            self.send_response(429)
            self.send_header("Retry-After", "900")
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):  # noqa: N802 - the page a redirect lands on answers 200, as a website would
        self.server.seen.append(("GET", self.path, self.headers.get("Authorization")))
        body = json.dumps({"id": "from-a-web-page"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _url(receiver, path: str) -> str:
    return f"http://127.0.0.1:{receiver.server_address[1]}{path}"


def _raise_popup(django_capture_on_commit_callbacks) -> None:
    """A type-4 popup at the deadline: one outbox record, delivered at once on commit."""
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    with django_capture_on_commit_callbacks(execute=True):
        engine.evaluate(resident_ids=[arrival.resident_id], at=ARRIVED + dt.timedelta(hours=72))


def test_a_redirecting_endpoint_is_a_failure_and_its_token_goes_nowhere_else(receiver,
                                                                              django_capture_on_commit_callbacks):
    DownstreamEndpointFactory(name="rail", url=_url(receiver, "/moved/rail"), token="rail-token")
    _raise_popup(django_capture_on_commit_callbacks)
    delivery = OutboxDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("failed", 1, "HTTP 302")
    assert OutboxAttempt.objects.get(delivery=delivery).status_code == 302
    assert receiver.seen == [("POST", "/moved/rail", "Bearer rail-token")]  # nothing reached /landing


def test_an_endpoint_saying_retry_after_is_not_tried_before(receiver, django_capture_on_commit_callbacks):
    DownstreamEndpointFactory(name="air", url=_url(receiver, "/busy/air"), token="air-token")
    before = timezone.now()
    _raise_popup(django_capture_on_commit_callbacks)
    delivery = OutboxDelivery.objects.get()
    assert (delivery.state, delivery.last_error) == ("failed", "HTTP 429")
    # the first backoff is 30 s; the endpoint asked for 900
    assert delivery.next_attempt_at >= before + dt.timedelta(seconds=900)


def test_a_redirecting_sms_gateway_is_a_failure_and_its_token_goes_nowhere_else(receiver, settings):
    settings.SMS_HTTP_URL, settings.SMS_HTTP_TOKEN = _url(receiver, "/moved/sms"), "gateway-token"
    with pytest.raises(sms.SmsSendError, match="HTTP 302"):
        sms.HttpBackend().send(phone="13800138000", body="hello", idempotency_key="k-1")
    assert receiver.seen == [("POST", "/moved/sms", "Bearer gateway-token")]
