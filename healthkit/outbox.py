"""Outbox to the downstream ticket-restriction systems (rail, airlines).

Every popup raised, lifted or withdrawn writes an OutboxRecord in the same transaction as the
change (the engine's SQL does it set-wise; `outbox_record` is the Python path used by
healthkit.services), fanned out to one OutboxDelivery per active DownstreamEndpoint.

Delivery: one Celery task per endpoint (so a slow or failing endpoint blocks nobody else; all on
the `outbox` queue) sends that endpoint's due rows, oldest first, each as a JSON POST with the
record's idempotency key in the `Idempotency-Key` header: claimed in a short transaction, sent
outside any transaction, the outcome recorded in another (at least once per endpoint: a crash
after the POST re-sends with the same key, which the endpoint de-duplicates). A failure is logged (OutboxAttempt, visible in the admin) and
retried with exponential backoff by the beat sweep `outbox_dispatch_due`; nothing is dropped:
after MAX_ATTEMPTS a row is marked dead and an administrator can requeue it. Within one
endpoint, a resident's records go in order (a lift never overtakes its raise, even a dead one).
"""

import datetime as dt
import json
import logging
import time
import urllib.error
import urllib.request

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from healthkit.models import (
    DownstreamEndpoint,
    OutboxAttempt,
    OutboxDelivery,
    OutboxRecord,
    PopupCase,
)

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 15
BATCH = 500
STOP_AFTER_FAILURES = 3
DUE_STATES = (OutboxDelivery.State.PENDING, OutboxDelivery.State.FAILED)
LEASE = dt.timedelta(seconds=60)  # > the 10 s HTTP timeout
RUN_BUDGET_SECONDS = 120  # one endpoint run stops after this; the next dispatch continues


class DeliveryError(Exception):
    """The endpoint refused the record or could not be reached; it will be retried."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code



def outbox_sql_ctes(*, changes: str, kind: str = "kind", popup_type: str = "popup_type",
                    policy: str = "policy", rule: str) -> str:
    """The `ob` and `dl` CTEs that set-based statements (engine, venue exposure) end with: one
    OutboxRecord per row of `changes` (columns id, resident_id, at) and one pending delivery per
    active endpoint, in the same statement as the change itself. Idempotent on the record key.
    The arguments are SQL expressions written in code (constants or %(name)s placeholders),
    never request data; the text has no braces, so callers may still str.format() around it."""
    return f"""
ob AS (
    INSERT INTO healthkit_outboxrecord
        (idempotency_key, kind, case_id, resident_id, popup_type, at, payload, created_at)
    SELECT 'popup-' || id || '-' || {kind}, {kind}, id, resident_id, {popup_type}, at,
           jsonb_build_object('event', 'popup.' || {kind}, 'case', id, 'popup_type', {popup_type},
                              'at', at, 'policy', {policy}, 'rule', {rule}),
           now()
    FROM {changes}
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, resident_id
),
dl AS (
    INSERT INTO healthkit_outboxdelivery
        (record_id, endpoint_id, resident_id, state, attempts, next_attempt_at, last_error, delivered_at)
    SELECT ob.id, e.id, ob.resident_id, 'pending', 0, now(), '', NULL
    FROM ob CROSS JOIN healthkit_downstreamendpoint e WHERE e.active
    RETURNING 1
)"""  # noqa: S608 - expressions from code only (see docstring)

def outbox_record(*, case: PopupCase, kind: str, at: dt.datetime, policy: str | None = None,
                  rule: str = "") -> OutboxRecord | None:
    """Write the record for a popup change in the caller's transaction (idempotent per case and
    kind) and its per-endpoint deliveries; delivery starts after commit."""
    record, created = OutboxRecord.objects.get_or_create(
        idempotency_key=f"popup-{case.pk}-{kind}",
        defaults={
            "kind": kind, "case": case, "resident_id": case.resident_id, "popup_type": case.popup_type,
            "at": at,
            "payload": {"event": f"popup.{kind}", "case": case.pk, "popup_type": case.popup_type,
                        "at": at.isoformat(), "policy": policy, "rule": rule},
        },
    )
    if not created:
        return record
    endpoints = list(DownstreamEndpoint.objects.filter(active=True).values_list("pk", flat=True))
    if endpoints:
        OutboxDelivery.objects.bulk_create(
            OutboxDelivery(record=record, endpoint_id=pk, resident_id=case.resident_id) for pk in endpoints
        )
        dispatch_on_commit()
    return record


def dispatch_on_commit() -> None:
    from healthkit import queues, tasks

    queues.publish_on_commit(tasks.outbox_dispatch_due, [()])


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


def _due(endpoint_id: int):
    # A dead row blocks the resident's later rows too: a requeued raise must never land after
    # its lift (the ticket restriction would come back).
    earlier_open = OutboxDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"), resident_id=OuterRef("resident_id"),
        state__in=(*DUE_STATES, OutboxDelivery.State.DEAD), id__lt=OuterRef("id"),
    )
    return (
        OutboxDelivery.objects.filter(endpoint_id=endpoint_id, state__in=DUE_STATES,
                                      next_attempt_at__lte=timezone.now())
        .filter(~Exists(earlier_open))
        .order_by("id")
    )


def endpoints_with_due_rows() -> list[int]:
    """One entry per endpoint with due rows. `order_by()` clears the model's default ordering:
    with it, `id` joins the SELECT DISTINCT and every due row came back (one task per row)."""
    return list(
        OutboxDelivery.objects.filter(state__in=DUE_STATES, next_attempt_at__lte=timezone.now(),
                                      endpoint__active=True)
        .order_by().values_list("endpoint_id", flat=True).distinct()
    )


def post_json(*, url: str, body: dict, token: str, idempotency_key: str, timeout: float = 10) -> int:
    """One HTTP POST; returns the status code or raises DeliveryError (2xx is success)."""
    request = urllib.request.Request(  # noqa: S310 - URL configured by administrators
        url, data=json.dumps(body, ensure_ascii=False).encode(), method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key,
                 **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code}", status_code=exc.code) from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DeliveryError(type(exc).__name__) from exc


def _body(delivery: OutboxDelivery) -> dict:
    record = delivery.record
    body = dict(record.payload)
    body["idempotency_key"] = record.idempotency_key
    if delivery.endpoint.send_id_number:
        # Decrypted only here, for the wire; never stored in the outbox or logged.
        body["id_number"] = record.resident.reveal_id_number()
    body["name_masked"] = record.resident.masked_name
    return body


def claim(*, delivery_id: int) -> tuple[OutboxDelivery, dict] | None:
    """Short transaction: take one due delivery (SKIP LOCKED), count the attempt and lease it
    (next try no sooner than LEASE, longer than the HTTP timeout, so nobody else sends it while
    this call may be in flight; a worker that dies mid-call leaves it due after the lease).
    Returns the row and the body to send, or None if someone else has it or it is not due."""
    with transaction.atomic():
        delivery = (
            OutboxDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("record__resident", "endpoint")
            .filter(pk=delivery_id, state__in=DUE_STATES, next_attempt_at__lte=timezone.now()).first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.next_attempt_at = timezone.now() + LEASE
        delivery.save(update_fields=["attempts", "next_attempt_at"])
        return delivery, _body(delivery)


def deliver(*, delivery_id: int) -> OutboxDelivery | None:
    """Send one due delivery: claim (short transaction), POST outside any transaction, record
    the outcome (another short one). Safe twice or concurrently: the claim decides. At least
    once: a crash after the POST sends again with the same Idempotency-Key after the lease."""
    claimed = claim(delivery_id=delivery_id)
    if claimed is None:
        return None
    delivery, body = claimed
    started = time.monotonic()
    status_code, error = None, ""
    try:
        status_code = post_json(
            url=delivery.endpoint.url, body=body, token=delivery.endpoint.token,
            idempotency_key=delivery.record.idempotency_key,
        )
    except DeliveryError as exc:
        status_code, error = exc.status_code, str(exc)[:200]
    duration = int((time.monotonic() - started) * 1000)
    if error:
        delivery.state = (OutboxDelivery.State.DEAD if delivery.attempts >= MAX_ATTEMPTS
                          else OutboxDelivery.State.FAILED)
        delivery.next_attempt_at = timezone.now() + _backoff(delivery.attempts)
        delivery.last_error = error
        logger.warning("outbox delivery %s to endpoint %s attempt %s failed: %s",
                       delivery.pk, delivery.endpoint_id, delivery.attempts, error)
    else:
        delivery.state = OutboxDelivery.State.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.last_error = ""
    with transaction.atomic():
        # Only this attempt's outcome: a newer attempt (lease expired meanwhile) is left alone.
        OutboxDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).exclude(
            state=OutboxDelivery.State.DELIVERED).update(
            state=delivery.state, next_attempt_at=delivery.next_attempt_at, last_error=delivery.last_error,
            delivered_at=delivery.delivered_at)
        OutboxAttempt.objects.create(delivery=delivery, ok=not error, status_code=status_code,
                                     error=error, duration_ms=duration)
    return delivery


def deliver_endpoint(*, endpoint_id: int, limit: int = BATCH, budget: float = RUN_BUDGET_SECONDS) -> int:
    """Send up to `limit` due rows of one endpoint, oldest first. One refused record does not
    hold up other residents' records; STOP_AFTER_FAILURES failures in a row mean the endpoint
    is down, and the next sweep tries again after the backoff. Rows that became due while this
    ran (a resident's lift behind its raise just delivered) go in the same run. Returns rows sent."""
    sent = failures = tried = 0
    started = time.monotonic()
    while tried < limit and time.monotonic() - started < budget:
        batch = list(_due(endpoint_id).values_list("pk", flat=True)[:limit - tried])
        if not batch:
            break
        progress = False
        for delivery_id in batch:
            if time.monotonic() - started >= budget:
                return sent
            tried += 1
            delivery = deliver(delivery_id=delivery_id)
            if delivery is None:
                continue
            if delivery.state != OutboxDelivery.State.DELIVERED:
                failures += 1
                if failures >= STOP_AFTER_FAILURES:
                    return sent
                continue
            sent += 1
            failures = 0
            progress = True
        if not progress:
            break
    return sent


def delivery_requeue(*, delivery_ids: list[int]) -> int:
    """Admin action: make dead or failed rows due now."""
    return OutboxDelivery.objects.filter(
        pk__in=delivery_ids, state__in=[OutboxDelivery.State.DEAD, OutboxDelivery.State.FAILED]
    ).update(state=OutboxDelivery.State.PENDING, next_attempt_at=timezone.now())
