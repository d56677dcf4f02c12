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

Batch records (the venue exposure job's raises: one record per risk window version, see
`batch_sql_ctes`) carry their popups as frozen id arrays and go as pages of
OutboxRecord.BATCH_PAGE cases, page after page, each page a POST with the Idempotency-Key
`<record key>-p<page>`; the delivery row counts the pages acknowledged, so a retry resumes at the
failed page and never re-sends an acknowledged one (a crash between the POST and the count
re-sends that one page with the same key). Ordering holds across both kinds: a resident's
record waits while an earlier batch that lists the resident is undelivered on that endpoint, and
a batch waits while any of its residents has an earlier undelivered record (single or batch).
"""

import datetime as dt
import hashlib
import hmac
import logging
import time
from email.utils import parsedate_to_datetime

from django.db import connection, transaction
from django.db.models import QuerySet

from communities.models import Resident
from healthkit import clock, outbound
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
LEASE = dt.timedelta(seconds=60)  # > the 30 s deadline of one HTTP call (healthkit.outbound)
RUN_BUDGET_SECONDS = 120  # one endpoint run stops after this; the next dispatch continues


class DeliveryError(Exception):
    """The endpoint refused the record or could not be reached; it will be retried (no sooner
    than `retry_after` seconds when the endpoint said so)."""

    def __init__(self, message: str, status_code: int | None = None, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


MAX_RETRY_AFTER = 3600  # an endpoint's Retry-After is honoured up to the backoff's own cap


def _retry_after(headers) -> int:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); 0 if absent or unreadable."""
    value = (headers.get("Retry-After") or "").strip() if headers is not None else ""
    if value.isdigit():
        return min(int(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 0
    if when.tzinfo is None:
        return 0
    return max(0, min(int((when - clock.now()).total_seconds()), MAX_RETRY_AFTER))



def outbox_sql_ctes(*, changes: str, kind: str = "kind", popup_type: str = "popup_type",
                    policy: str = "policy", rule: str) -> str:
    """The `ob` and `dl` CTEs that set-based statements (engine, venue exposure) end with: one
    OutboxRecord per row of `changes` (columns id, resident_id, at) and one pending delivery per
    active endpoint, in the same statement as the change itself. Idempotent per popup and kind
    (the record key `popup-<case>-<kind>` says the same: outbox_record_key_names_popup).
    The arguments are SQL expressions written in code (constants or %(name)s placeholders),
    never request data; the text has no braces, so callers may still str.format() around it."""
    return f"""
ob AS (
    INSERT INTO healthkit_outboxrecord
        (idempotency_key, kind, case_id, resident_id, popup_type, at, payload, created_at)
    SELECT 'popup-' || id || '-' || {kind}, {kind}, id, resident_id, {popup_type}, at,
           -- the same object as jsonb_build_object('event', ..., 'rule', ...), built from a row:
           -- PostgreSQL 15 looks up the type of each of that call's twelve arguments again on
           -- every row (its keys included), a row's column names are not looked up
           (SELECT to_jsonb(p) FROM (SELECT 'popup.' || {kind} AS event, id AS "case", {popup_type} AS popup_type,
                                            at, {policy} AS policy, {rule} AS rule) p),
           now()
    FROM {changes}
    ON CONFLICT (case_id, kind) WHERE case_id IS NOT NULL DO NOTHING
    RETURNING id, resident_id
),
dl AS (
    INSERT INTO healthkit_outboxdelivery
        (record_id, endpoint_id, resident_id, state, attempts, next_attempt_at, last_error, delivered_at)
    SELECT ob.id, e.id, ob.resident_id, 'pending', 0, now(), '', NULL
    FROM ob CROSS JOIN healthkit_downstreamendpoint e WHERE e.active
    RETURNING 1
)"""  # noqa: S608 - expressions from code only (see docstring)

def batch_sql_ctes(*, changes: str, key: str, kind: str, popup_type: str, policy: str, rule: str,
                   extra: str = "'{}'::jsonb") -> str:
    """The `obb` and `dlb` CTEs for ONE batch record listing every row of `changes` (columns id,
    resident_id; all changed `at` = the record's), frozen in case order, and one pending
    delivery per active endpoint; nothing when `changes` is empty. Idempotent on `key` (an SQL
    expression): a batch that exists already is not written again, so callers decide beforehand
    whether their rows go as a batch. `extra` (a jsonb expression) is merged into the payload.
    Arguments are SQL written in code, as for `outbox_sql_ctes`."""
    return f"""
obb AS (
    INSERT INTO healthkit_outboxrecord
        (idempotency_key, kind, case_id, resident_id, popup_type, at, payload, case_ids, resident_ids,
         created_at)
    SELECT {key}, {kind}, NULL, NULL, {popup_type}, max(at),
           jsonb_build_object('event', 'popup.' || {kind}, 'batch', {key}, 'popup_type', {popup_type},
                              'at', max(at), 'policy', {policy}, 'rule', {rule}, 'count', count(*))
             || {extra},
           array_agg(id ORDER BY id), array_agg(resident_id ORDER BY id), now()
    FROM {changes}
    HAVING count(*) > 0
    ON CONFLICT (idempotency_key) WHERE case_id IS NULL DO NOTHING
    RETURNING id
),
dlb AS (
    INSERT INTO healthkit_outboxdelivery
        (record_id, endpoint_id, resident_id, state, attempts, next_attempt_at, last_error, delivered_at,
         pages_done)
    SELECT obb.id, e.id, NULL, 'pending', 0, now(), '', NULL, 0
    FROM obb CROSS JOIN healthkit_downstreamendpoint e WHERE e.active
    RETURNING 1
)"""  # noqa: S608 - expressions from code only (see docstring)


def outbox_record(*, case: PopupCase, kind: str, at: dt.datetime, policy: str | None = None,
                  rule: str = "") -> OutboxRecord | None:
    """Write the record for a popup change in the caller's transaction (idempotent per case and
    kind) and its per-endpoint deliveries; delivery starts after commit."""
    record, created = OutboxRecord.objects.get_or_create(
        case=case, kind=kind,
        defaults={
            "idempotency_key": f"popup-{case.pk}-{kind}", "resident_id": case.resident_id,
            "popup_type": case.popup_type, "at": at,
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


_OPEN = "('pending', 'failed', 'dead')"  # undelivered: holds a resident's later records back
# Every "held back" set is computed on its own, without a join between two CTEs (a CTE has no
# index and no statistics: a nested loop over one would be quadratic) and used as an
# uncorrelated NOT IN (hashed): linear in the open batches' size, and nothing to do when no
# batch is open (the usual case: a batch is delivered seconds after its window's run).
_DUE_IDS = f"""
WITH open_batch AS MATERIALIZED (
    SELECT b.id AS delivery_id, r.resident_ids
    FROM healthkit_outboxdelivery b JOIN healthkit_outboxrecord r ON r.id = b.record_id
    WHERE b.endpoint_id = %(endpoint)s AND b.resident_id IS NULL AND b.state IN {_OPEN}
),
member AS MATERIALIZED (
    SELECT delivery_id, resident_id,
           min(delivery_id) OVER (PARTITION BY resident_id) AS first_batch
    FROM (SELECT delivery_id, unnest(resident_ids) AS resident_id FROM open_batch) m
),
held AS MATERIALIZED (
    -- a resident's single record behind an earlier open batch listing the resident
    SELECT e.id FROM member m JOIN healthkit_outboxdelivery e
      ON e.endpoint_id = %(endpoint)s AND e.resident_id = m.resident_id
     AND e.state IN ('pending', 'failed') AND e.id > m.first_batch
    WHERE m.delivery_id = m.first_batch
  UNION
    -- a batch behind an earlier open batch sharing a resident
    SELECT delivery_id FROM member WHERE delivery_id > first_batch
  UNION
    -- a batch behind an earlier open single record of one of its residents
    SELECT m.delivery_id FROM member m JOIN healthkit_outboxdelivery e
      ON e.endpoint_id = %(endpoint)s AND e.resident_id = m.resident_id
     AND e.state IN {_OPEN} AND e.id < m.delivery_id
)
SELECT d.id FROM healthkit_outboxdelivery d
WHERE d.endpoint_id = %(endpoint)s AND d.state IN ('pending', 'failed') AND d.next_attempt_at <= %(now)s
  -- a single record behind an earlier open single record of the same resident
  AND NOT EXISTS (SELECT 1 FROM healthkit_outboxdelivery e
                  WHERE e.endpoint_id = d.endpoint_id AND e.resident_id = d.resident_id
                    AND e.state IN {_OPEN} AND e.id < d.id)
  AND d.id NOT IN (SELECT id FROM held)
ORDER BY d.id LIMIT %(limit)s
"""  # noqa: S608 - constants only


def due_ids(*, endpoint_id: int, limit: int = BATCH) -> list[int]:
    """Due deliveries of one endpoint, oldest first, that no earlier undelivered record of the
    same resident holds back (a dead one too: a requeued raise must never land after its lift,
    or the ticket restriction would come back). Batches count for every resident they list."""
    with connection.cursor() as cursor:
        cursor.execute(_DUE_IDS, {"endpoint": endpoint_id, "limit": limit, "now": clock.now()})
        return [row[0] for row in cursor.fetchall()]


def endpoints_with_due_rows() -> list[int]:
    """One entry per endpoint with due rows. `order_by()` clears the model's default ordering:
    with it, `id` joins the SELECT DISTINCT and every due row came back (one task per row)."""
    return list(
        OutboxDelivery.objects.filter(state__in=DUE_STATES, next_attempt_at__lte=clock.now(),
                                      endpoint__active=True)
        .order_by().values_list("endpoint_id", flat=True).distinct()
    )


SIGNATURE_HEADER = "X-Healthkit-Signature"
TIMESTAMP_HEADER = "X-Healthkit-Timestamp"


def signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """The value of X-Healthkit-Signature: `v1=` and the hex HMAC-SHA256, keyed by the endpoint's
    signing secret (UTF-8), of the timestamp (Unix seconds, as sent), a dot and the body's exact
    bytes. A receiver recomputes it over what it read (docs/engine.md has the recipe)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def _signer(secret: str):
    """Headers signing one POST's body with an endpoint's secret (none without a secret)."""
    if not secret:
        return None

    def sign(body: bytes) -> dict[str, str]:
        timestamp = str(int(clock.timestamp()))
        return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret=secret, timestamp=timestamp, body=body)}

    return sign


def post_json(*, url: str, body: dict, token: str, idempotency_key: str,
              timeout: float = outbound.DEFAULT_TIMEOUT, signing_secret: str = "") -> int:
    """One HTTP POST (healthkit.outbound: redirects refused, the whole call bounded in time);
    returns the status code or raises DeliveryError: 2xx is success, anything else (a redirect,
    404, 410, 429, 5xx, a malformed answer) or no answer is a failure, retried after the backoff
    or the endpoint's Retry-After, whichever is later."""
    try:
        answer = outbound.post_json(
            url=url, body=body, timeout=timeout, sign=_signer(signing_secret),
            headers={"Idempotency-Key": idempotency_key, **({"Authorization": f"Bearer {token}"} if token else {})})
    except outbound.PostFailed as exc:
        raise DeliveryError(str(exc), status_code=exc.status_code, retry_after=_retry_after(exc.headers)) from exc
    return answer.status


def _body(delivery: OutboxDelivery) -> dict:
    record = delivery.record
    body = dict(record.payload)
    body["idempotency_key"] = record.idempotency_key
    if delivery.endpoint.send_id_number:
        # Decrypted only here, for the wire; never stored in the outbox or logged.
        body["id_number"] = record.resident.reveal_id_number()
    body["name_masked"] = record.resident.masked_name
    return body


def page_key(record: OutboxRecord, page: int) -> str:
    """The Idempotency-Key of one page of a batch (pages count from 1)."""
    return f"{record.idempotency_key}-p{page}"


def batch_page_body(*, record: OutboxRecord, endpoint: DownstreamEndpoint, page: int) -> dict:
    """Page `page` (from 1) of a batch: the batch's fields and, per popup, the same fields a
    single-popup record carries (with that popup's own key, `popup-<case>-<kind>`), in case
    order. Built from the frozen arrays, so every try of a page lists the same popups."""
    size = OutboxRecord.BATCH_PAGE
    cases = record.case_ids[(page - 1) * size:page * size]
    residents = record.resident_ids[(page - 1) * size:page * size]
    people = Resident.objects.only("id", "name", "id_encrypted").in_bulk(set(residents))
    common = {k: record.payload.get(k) for k in ("popup_type", "at", "policy", "rule")}
    items = []
    for case_id, resident_id in zip(cases, residents, strict=True):
        person = people.get(resident_id)
        item = {"event": f"popup.{record.kind}", "case": case_id, **common,
                "idempotency_key": f"popup-{case_id}-{record.kind}",
                "name_masked": person.masked_name if person else ""}
        if endpoint.send_id_number:
            # Decrypted only here, for the wire; never stored in the outbox or logged.
            item["id_number"] = person.reveal_id_number() if person else ""
        items.append(item)
    return {**record.payload, "idempotency_key": page_key(record, page), "page": page,
            "pages": record.pages, "page_size": size, "cases": items}


def claim(*, delivery_id: int) -> tuple[OutboxDelivery, dict] | None:
    """Short transaction: take one due delivery (SKIP LOCKED), count the attempt and lease it
    (next try no sooner than LEASE, longer than the HTTP timeout, so nobody else sends it while
    this call may be in flight; a worker that dies mid-call leaves it due after the lease).
    Returns the row and the body to send (None for a batch: its pages are built one by one),
    or None if someone else has it or it is not due."""
    with transaction.atomic():
        delivery = (
            OutboxDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("record__resident", "endpoint")
            .filter(pk=delivery_id, state__in=DUE_STATES, next_attempt_at__lte=clock.now()).first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.next_attempt_at = clock.now() + LEASE
        delivery.save(update_fields=["attempts", "next_attempt_at"])
        return delivery, (None if delivery.record.is_batch else _body(delivery))


def deliver(*, delivery_id: int) -> OutboxDelivery | None:
    """Send one due delivery: claim (short transaction), POST outside any transaction, record
    the outcome (another short one). Safe twice or concurrently: the claim decides. At least
    once: a crash after the POST sends again with the same Idempotency-Key after the lease.
    A batch sends its pages from the first unacknowledged one; each acknowledged page is
    counted at once (and the lease renewed), so a retry never re-sends it."""
    claimed = claim(delivery_id=delivery_id)
    if claimed is None:
        return None
    delivery, body = claimed
    if body is None:
        return _deliver_batch(delivery)
    status_code, error, duration, wait = _post(delivery, body, delivery.record.idempotency_key)
    _record_outcome(delivery, status_code=status_code, error=error, duration=duration, done=not error,
                    retry_after=wait)
    return delivery


def _post(delivery: OutboxDelivery, body: dict, key: str) -> tuple[int | None, str, int, int]:
    """(status code, error or "", milliseconds, the endpoint's Retry-After in seconds or 0)."""
    started = time.monotonic()
    status_code, error, wait = None, "", 0
    try:
        status_code = post_json(url=delivery.endpoint.url, body=body, token=delivery.endpoint.token,
                                idempotency_key=key, signing_secret=delivery.endpoint.signing_secret)
    except DeliveryError as exc:
        status_code, error, wait = exc.status_code, str(exc)[:200], exc.retry_after
    return status_code, error, int((time.monotonic() - started) * 1000), wait


def _record_outcome(delivery: OutboxDelivery, *, status_code: int | None, error: str, duration: int,
                    done: bool, retry_after: int = 0) -> bool:
    """Store one try's outcome: failed (backoff) / dead, delivered (`done`), or for a batch
    page that is not the last, one more page acknowledged and the lease renewed. Only this
    attempt's row: False when a newer attempt took the row over (lease expired meanwhile)."""
    update: dict = {}
    if error:
        delivery.state = (OutboxDelivery.State.DEAD if delivery.attempts >= MAX_ATTEMPTS
                          else OutboxDelivery.State.FAILED)
        delivery.next_attempt_at = clock.now() + max(_backoff(delivery.attempts),
                                                        dt.timedelta(seconds=retry_after))
        delivery.last_error = error
        logger.warning("outbox delivery %s to endpoint %s attempt %s failed: %s",
                       delivery.pk, delivery.endpoint_id, delivery.attempts, error)
    else:
        if delivery.record.is_batch:
            delivery.pages_done += 1
            update["pages_done"] = delivery.pages_done
        if done:
            delivery.state = OutboxDelivery.State.DELIVERED
            delivery.delivered_at = clock.now()
        else:
            delivery.next_attempt_at = clock.now() + LEASE
        delivery.last_error = ""
    with transaction.atomic():
        # Only this attempt's outcome: a newer attempt (lease expired meanwhile) is left alone.
        mine = OutboxDelivery.objects.filter(pk=delivery.pk, attempts=delivery.attempts).exclude(
            state=OutboxDelivery.State.DELIVERED).update(
            state=delivery.state, next_attempt_at=delivery.next_attempt_at, last_error=delivery.last_error,
            delivered_at=delivery.delivered_at, **update)
        OutboxAttempt.objects.create(delivery=delivery, ok=not error, status_code=status_code,
                                     error=error, duration_ms=duration)
    return bool(mine)


def _deliver_batch(delivery: OutboxDelivery) -> OutboxDelivery:
    record, pages = delivery.record, delivery.record.pages
    while delivery.pages_done < pages:
        page = delivery.pages_done + 1
        body = batch_page_body(record=record, endpoint=delivery.endpoint, page=page)
        status_code, error, duration, wait = _post(delivery, body, page_key(record, page))
        mine = _record_outcome(delivery, status_code=status_code, error=error, duration=duration,
                               done=not error and page == pages, retry_after=wait)
        if error or not mine:
            break
    return delivery


def deliver_endpoint(*, endpoint_id: int, limit: int = BATCH, budget: float = RUN_BUDGET_SECONDS) -> int:
    """Send up to `limit` due rows of one endpoint, oldest first. One refused record does not
    hold up other residents' records; STOP_AFTER_FAILURES failures in a row mean the endpoint
    is down, and the next sweep tries again after the backoff. Rows that became due while this
    ran (a resident's lift behind its raise just delivered) go in the same run. Returns rows sent."""
    sent = failures = tried = 0
    started = time.monotonic()
    while tried < limit and time.monotonic() - started < budget:
        batch = due_ids(endpoint_id=endpoint_id, limit=limit - tried)
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


def delivery_requeue(*, deliveries: QuerySet[OutboxDelivery]) -> int:
    """Admin action: make the dead or failed rows of `deliveries` (any selection, bounded by the
    caller) due now, in one UPDATE."""
    return OutboxDelivery.objects.filter(
        pk__in=deliveries.order_by().values("pk"), state__in=[OutboxDelivery.State.DEAD, OutboxDelivery.State.FAILED]
    ).update(state=OutboxDelivery.State.PENDING, next_attempt_at=clock.now())
