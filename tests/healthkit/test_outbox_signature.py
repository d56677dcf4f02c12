"""A ticket system can check that a delivery comes from the back-office: an endpoint with a
signing secret gets every POST signed (X-Healthkit-Timestamp, X-Healthkit-Signature), and the
receiver here is the one docs/engine.md prints, taken from the page itself, so the docs and the
wire cannot drift apart."""

import datetime as dt
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from healthkit import engine
from healthkit.models import OutboxAttempt, OutboxDelivery
from tests.factories.healthkit import ArrivalFactory, DownstreamEndpointFactory, cst

pytestmark = pytest.mark.django_db
ARRIVED = cst(2022, 6, 1, 9)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "engine.md"


def _documented_verify():
    """The `verify` function of the docs' "Signed deliveries" paragraph, as a receiver would copy it."""
    section = DOCS.read_text().split("**Signed deliveries.**", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - our own documentation
    return namespace["verify"]


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = self.server.verify(self.server.secret, self.headers, body)
        self.server.seen.append((ok, self.headers.get("X-Healthkit-Signature")))
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.seen, server.secret, server.verify = [], "shared-secret-of-rail", _documented_verify()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _raise_popup(django_capture_on_commit_callbacks) -> None:
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    with django_capture_on_commit_callbacks(execute=True):
        engine.evaluate(resident_ids=[arrival.resident_id], at=ARRIVED + dt.timedelta(hours=72))


def _endpoint(receiver, secret: str):
    return DownstreamEndpointFactory(url=f"http://127.0.0.1:{receiver.server_address[1]}/popups",
                                     signing_secret=secret)


def test_a_receiver_written_from_the_docs_accepts_a_signed_delivery(receiver, django_capture_on_commit_callbacks):
    _endpoint(receiver, "shared-secret-of-rail")
    _raise_popup(django_capture_on_commit_callbacks)
    assert OutboxDelivery.objects.get().state == "delivered"
    assert [ok for ok, _signature in receiver.seen] == [True]


def test_a_wrong_secret_is_refused_and_the_record_stays_undelivered(receiver, django_capture_on_commit_callbacks):
    _endpoint(receiver, "not-the-receivers-secret")
    _raise_popup(django_capture_on_commit_callbacks)
    delivery = OutboxDelivery.objects.get()
    assert (delivery.state, delivery.last_error) == ("failed", "HTTP 401")
    assert OutboxAttempt.objects.get(delivery=delivery).status_code == 401


def test_without_a_secret_nothing_is_signed(receiver, django_capture_on_commit_callbacks):
    _endpoint(receiver, "")
    _raise_popup(django_capture_on_commit_callbacks)
    assert receiver.seen == [(False, None)]
