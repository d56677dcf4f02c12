"""Outbox to the ticket-restriction systems: every raise/lift is written with the change,
delivered per endpoint with an idempotency key, retried with exponential backoff; a failing
endpoint never blocks the others or loses a record; each try is in the admin's delivery log."""

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.admin.sites import site as admin_site
from django.urls import reverse
from django.utils import timezone

from communities.models import User
from healthkit import engine, outbox, tasks
from healthkit.models import OutboxAttempt, OutboxDelivery, OutboxRecord, TestResult
from tests.factories import TestResultFactory
from tests.factories.healthkit import ArrivalFactory, DownstreamEndpointFactory, cst

pytestmark = pytest.mark.django_db
ARRIVED = cst(2022, 6, 1, 9)
DEADLINE = ARRIVED + dt.timedelta(hours=72)


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append({"path": self.path, "key": self.headers["Idempotency-Key"],
                                 "auth": self.headers.get("Authorization"), "body": body})
        status = 503 if self.path.startswith("/down") and self.server.down else 200
        if body.get("case") == self.server.refuse_case:
            status = 422
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.seen, server.down, server.refuse_case = [], True, None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def endpoints(receiver):
    base = f"http://127.0.0.1:{receiver.server_address[1]}"
    rail = DownstreamEndpointFactory(name="rail", url=f"{base}/down/rail", token="rail-token")
    air = DownstreamEndpointFactory(name="air", url=f"{base}/ok/air", token="air-token", send_id_number=False)
    return rail, air


def _raise_and_lift(django_capture_on_commit_callbacks):
    """A type-4 popup raised at the deadline, then lifted by a negative result."""
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    with django_capture_on_commit_callbacks(execute=True):
        engine.evaluate(resident_ids=[arrival.resident_id], at=DEADLINE)
    TestResultFactory(resident=arrival.resident, sampled_at=DEADLINE, resulted_at=DEADLINE + dt.timedelta(hours=2),
                      received_at=DEADLINE + dt.timedelta(hours=2), result=TestResult.Outcome.NEGATIVE)
    with django_capture_on_commit_callbacks(execute=True):
        engine.evaluate(resident_ids=[arrival.resident_id], at=DEADLINE + dt.timedelta(hours=3))
    return arrival.resident


def _make_due(endpoint):
    OutboxDelivery.objects.filter(endpoint=endpoint).exclude(state="delivered").update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


def test_failing_endpoint_blocks_nobody_else_and_loses_nothing(receiver, endpoints, django_capture_on_commit_callbacks):
    rail, air = endpoints
    resident = _raise_and_lift(django_capture_on_commit_callbacks)
    records = list(OutboxRecord.objects.filter(resident=resident).order_by("id"))
    assert [r.kind for r in records] == ["raised", "lifted"]
    # The working endpoint got both, in order, each with its record's idempotency key.
    air_seen = [s for s in receiver.seen if s["path"] == "/ok/air"]
    assert [s["key"] for s in air_seen] == [r.idempotency_key for r in records]
    assert [s["body"]["event"] for s in air_seen] == ["popup.raised", "popup.lifted"]
    assert air_seen[0]["auth"] == "Bearer air-token" and "id_number" not in air_seen[0]["body"]
    assert set(OutboxDelivery.objects.filter(endpoint=air).values_list("state", flat=True)) == {"delivered"}
    # The failing one: the raise failed once and waits for its backoff; the lift waits behind it.
    rail_rows = list(OutboxDelivery.objects.filter(endpoint=rail).order_by("id"))
    assert [(d.state, d.attempts) for d in rail_rows] == [("failed", 1), ("pending", 0)]
    assert [s["body"]["event"] for s in receiver.seen if s["path"] == "/down/rail"] == ["popup.raised"]
    log = OutboxAttempt.objects.get(delivery=rail_rows[0])
    assert (log.ok, log.status_code, log.error) == (False, 503, "HTTP 503")


def test_retries_back_off_exponentially_then_deliver_in_order(receiver, endpoints, django_capture_on_commit_callbacks):
    rail, _air = endpoints
    resident = _raise_and_lift(django_capture_on_commit_callbacks)
    first = OutboxDelivery.objects.filter(endpoint=rail).order_by("id").first()
    waits = []
    for _attempt in range(3):
        first.refresh_from_db()
        waits.append(round((first.next_attempt_at - timezone.now()).total_seconds()))
        # Not due yet: the beat sweep sends nothing.
        tasks.outbox_dispatch_due()
        assert OutboxAttempt.objects.filter(delivery=first).count() == first.attempts
        _make_due(rail)
        tasks.outbox_dispatch_due()
    assert [pytest.approx(w, abs=2) for w in waits] == [30, 60, 120]
    receiver.down = False
    _make_due(rail)
    tasks.outbox_dispatch_due()
    rows = list(OutboxDelivery.objects.filter(endpoint=rail).order_by("id"))
    assert [(d.state, d.attempts) for d in rows] == [("delivered", 5), ("delivered", 1)]
    rail_seen = [s for s in receiver.seen if s["path"] == "/down/rail"]
    # Every retry of the raise carried the same key; the lift only went after the raise.
    keys = [s["key"] for s in rail_seen]
    raised_key, lifted_key = OutboxRecord.objects.filter(resident=resident).order_by("id").values_list(
        "idempotency_key", flat=True)
    assert keys == [raised_key] * 5 + [lifted_key]
    assert rail_seen[-1]["body"]["id_number"] == resident.reveal_id_number()


def test_after_max_attempts_a_row_is_dead_and_the_admin_can_requeue_it(receiver, endpoints,
                                                                       django_capture_on_commit_callbacks):
    rail, _air = endpoints
    _raise_and_lift(django_capture_on_commit_callbacks)
    first = OutboxDelivery.objects.filter(endpoint=rail).order_by("id").first()
    OutboxDelivery.objects.filter(pk=first.pk).update(attempts=outbox.MAX_ATTEMPTS - 1)
    _make_due(rail)
    tasks.outbox_dispatch_due()
    first.refresh_from_db()
    assert first.state == "dead"
    assert OutboxRecord.objects.filter(pk=first.record_id).exists()  # never lost
    assert outbox.delivery_requeue(deliveries=OutboxDelivery.objects.filter(pk=first.pk)) == 1
    receiver.down = False
    tasks.outbox_dispatch_due()
    assert set(OutboxDelivery.objects.filter(endpoint=rail).values_list("state", flat=True)) == {"delivered"}


def test_a_delivery_is_sent_once_even_if_two_workers_race(receiver, endpoints, django_capture_on_commit_callbacks):
    _rail, air = endpoints
    receiver.down = False
    with django_capture_on_commit_callbacks(execute=False):
        engine.evaluate(resident_ids=[ArrivalFactory(arrived_at=ARRIVED).resident_id], at=DEADLINE)
    delivery = OutboxDelivery.objects.get(endpoint=air)
    assert outbox.deliver(delivery_id=delivery.pk).state == "delivered"
    assert outbox.deliver(delivery_id=delivery.pk) is None
    assert len([s for s in receiver.seen if s["path"] == "/ok/air"]) == 1


def test_the_delivery_log_is_in_the_admin(client, receiver, endpoints, django_capture_on_commit_callbacks):
    rail, _air = endpoints
    _raise_and_lift(django_capture_on_commit_callbacks)
    for model in ("downstreamendpoint", "outboxdelivery", "outboxrecord", "outboxattempt"):
        assert any(m._meta.model_name == model for m in admin_site._registry)
    admin = User.objects.create_superuser("root", "root@example.invalid", "pw-1234-5678", role="administrator")
    client.force_login(admin)
    failed = OutboxDelivery.objects.filter(endpoint=rail, state="failed").get()
    page = client.get(reverse("admin:healthkit_outboxdelivery_change", args=[failed.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and b"HTTP 503" in page.content
    listing = client.get(reverse("admin:healthkit_outboxdelivery_changelist") + f"?endpoint__id__exact={rail.pk}")
    assert listing.status_code == 200
    response = client.post(reverse("admin:healthkit_outboxdelivery_changelist"),
                           {"action": "requeue", "_selected_action": [failed.pk], "confirm": "yes"})
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.state in ("pending", "failed") and failed.attempts >= 1
    assert client.get(reverse("admin:healthkit_downstreamendpoint_changelist")).status_code == 200


def test_one_refused_record_does_not_hold_up_other_residents(receiver, endpoints, django_capture_on_commit_callbacks):
    rail, _air = endpoints
    receiver.down = False
    residents = [ArrivalFactory(arrived_at=ARRIVED).resident_id for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=False):
        engine.evaluate(resident_ids=residents, at=DEADLINE)
    poison = OutboxDelivery.objects.filter(endpoint=rail).order_by("id").first()
    receiver.refuse_case = poison.record.case_id
    assert outbox.deliver_endpoint(endpoint_id=rail.pk) == 2
    states = dict(OutboxDelivery.objects.filter(endpoint=rail).values_list("pk", "state"))
    assert states.pop(poison.pk) == "failed"
    assert set(states.values()) == {"delivered"}
