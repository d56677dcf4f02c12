"""SMS gateway: backends (console, in-memory, HTTP) and the outbox delivery.

Services call `sms_enqueue` inside their transaction; the row is the promise. Delivery runs in
Celery (on commit, on the `codes` queue for one-time codes and emergency notices and on
`notifications` for the rest; a beat sweep for retries and lost publishes) in three steps, so no
database transaction is open during the HTTP call: claim the row (short transaction, SKIP LOCKED,
state `sending` with a lease longer than the HTTP timeout), send, record the outcome.

Contract: **at least once** to the gateway, every try with the row's idempotency key. A worker
that dies during the send, or an answer that never comes (timeout), leaves the outcome unknown;
the message is tried again with the same key after the lease or backoff. The resident gets it
once when the gateway de-duplicates on `Idempotency-Key` (our HTTP contract asks it to). For a
gateway that does not, set SMS_GATEWAY_DEDUPLICATES=false: an unknown outcome is then never
re-sent automatically; the message is marked dead with "outcome unknown" for a person to decide
(at most once, never a duplicate text).
"""

import datetime as dt
import http.client
import json
import logging
import re
import time
import urllib.error
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from communities import pii
from communities.models import Resident
from healthkit import clock, inputs, outbound
from healthkit.models import SmsMessage

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
# Longer than the HTTP timeout: while one send may still be in flight, nobody else sends the row.
SEND_LEASE = dt.timedelta(seconds=60)
DRAIN_BUDGET_SECONDS = 120  # one drain task stops after this; the next sweep continues


class SmsSendError(Exception):
    """The gateway refused or could not be reached; the message stays queued for retry.
    `maybe_sent`, when a backend sets it, says whether the text may have gone out anyway."""

    maybe_sent: bool | None = None


class SmsBackend(Protocol):
    def send(self, *, phone: str, body: str, idempotency_key: str) -> str: ...


MASKED = "******"
# A path segment of a link that looks like a token (16+ URL-safe characters, signed or not).
_URL = re.compile(r"https?://[^\s]+")
# A path segment (not the host: that follows "//") holding 16+ URL-safe characters in a row,
# signed ("raw.signature") or not.
_TOKEN_SEGMENT = re.compile(r"(?<=[^/]/)[A-Za-z0-9_:.-]*[A-Za-z0-9_-]{16,}[A-Za-z0-9_:.-]*(?=/|$)")
_CODE = re.compile(r"(?<![0-9])[0-9]{6}(?![0-9])")  # the one-time codes' length


def mask_links(text: str) -> str:
    """Mask every token-like path segment of every link in `text` (the class of secret a link
    carries), keeping the rest readable: `https://site/clearance/r/******/`."""
    return _URL.sub(lambda m: _TOKEN_SEGMENT.sub(MASKED, m.group(0)), text)


def mask_secrets(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """The text as it may be stored and shown: the named secrets and any link token masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASKED)
    return mask_links(text)


class ConsoleBackend:
    """Development: print the text with the phone, codes and link tokens masked. The console
    (and whatever collects it) never holds a live credential; demo links come from seed_demo."""

    def send(self, *, phone: str, body: str, idempotency_key: str) -> str:
        shown = _CODE.sub(MASKED, mask_links(body))
        print(f"[SMS to {pii.mask_phone(phone)}] {shown}", flush=True)
        return f"console-{idempotency_key}"


@dataclass
class SentMessage:
    phone: str
    body: str
    idempotency_key: str


@dataclass
class MemoryBackend:
    """Tests: records messages; `fail_next` makes the next N sends fail."""

    outbox: list[SentMessage] = field(default_factory=list)
    fail_next: int = 0

    def send(self, *, phone: str, body: str, idempotency_key: str) -> str:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise SmsSendError("simulated gateway failure")
        if any(m.idempotency_key == idempotency_key for m in self.outbox):
            return f"mem-{idempotency_key}"  # the provider deduplicates by key, like real ones
        self.outbox.append(SentMessage(phone=phone, body=body, idempotency_key=idempotency_key))
        return f"mem-{idempotency_key}"


memory_backend = MemoryBackend()


class HttpBackend:
    """Production: POST JSON to SMS_HTTP_URL with a bearer token and an Idempotency-Key header
    (healthkit.outbound: redirects refused, the whole call bounded in time). A failure says
    whether the text may have gone out (`maybe_sent`): only then does a gateway that does not
    de-duplicate keep it from being sent again. A 2xx is a send, whatever its body says: an
    unreadable answer costs the provider id (delivery receipts), never a second text."""

    def send(self, *, phone: str, body: str, idempotency_key: str) -> str:
        try:
            answer = outbound.post_json(
                url=settings.SMS_HTTP_URL, body={"to": phone, "text": body, "sender": settings.SMS_SENDER_NAME},
                headers={"Authorization": f"Bearer {settings.SMS_HTTP_TOKEN}", "Idempotency-Key": idempotency_key})
        except outbound.PostFailed as exc:  # the gateway's answer is said by its status, never its body
            error = SmsSendError(str(exc))
            error.maybe_sent = exc.maybe_delivered
            raise error from exc
        try:
            payload = json.loads(answer.body or b"{}")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            logger.warning("sms gateway accepted a message (HTTP %s) with an unreadable answer", answer.status)
            return ""
        return str(payload.get("id", ""))[:64]


def get_backend() -> SmsBackend:
    if settings.SMS_BACKEND == "healthkit.sms.MemoryBackend":
        return memory_backend
    return import_string(settings.SMS_BACKEND)()


def sms_enqueue(*, phone: str, body: str, purpose: str, idempotency_key: str,
                resident: Resident | None = None, secrets: tuple[str, ...] | list[str] = (),
                not_before: dt.datetime | None = None) -> SmsMessage:
    """Queue an SMS in the caller's transaction; the same key never queues (or sends) twice.

    `secrets` names the parts of `body` that work as a credential (a one-time code, a link
    token); link tokens are found without being named too. The row keeps the text with them
    masked; the full text waits encrypted until it is sent, then it is wiped.
    `not_before` (quiet hours, healthkit/notify.py) holds it back: the due sweep sends it then.
    """
    from healthkit import tasks

    number = pii.validate_phone(phone)
    shown = mask_secrets(body, secrets)
    now = clock.now()
    held = not_before is not None and not_before > now
    message, created = SmsMessage.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={
            "purpose": purpose, "resident": resident, "phone_encrypted": pii.encrypt(number),
            "phone_masked": pii.mask_phone(number), "body": shown,
            "pending_encrypted": pii.encrypt(body) if shown != body else "",
            "next_attempt_at": not_before if held else now, "not_before": not_before,
        },
    )
    if created and not held:  # a held message waits for the due sweep (not_before)
        from healthkit import queues

        queues.publish_on_commit(tasks.sms_deliver, [(message.pk,)], queue=queues.sms_queue(purpose))
    return message


def sms_outgoing_text(message: SmsMessage) -> str:
    """The text to hand to the gateway: the full one while it waits, else the stored one."""
    return pii.decrypt(message.pending_encrypted) if message.pending_encrypted else message.body


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


def _outcome_unknown(exc: BaseException) -> bool:
    """The request may have reached the gateway (no answer, connection cut after sending)."""
    flag = getattr(exc, "maybe_sent", None)
    if flag is not None:
        return bool(flag)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, urllib.error.URLError) and isinstance(seen.reason, TimeoutError):
            return True
        if isinstance(seen, TimeoutError | ConnectionResetError | http.client.IncompleteRead):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def sms_claim(*, message_id: int) -> SmsMessage | None:
    """Short transaction: take one sendable message (queued, failed, or `sending` whose lease
    expired because its worker died) and mark it `sending` with a lease. None if someone else
    has it or it is done. Without a de-duplicating gateway an expired lease is not re-sent."""
    now = clock.now()
    with transaction.atomic():
        message = (
            SmsMessage.objects.select_for_update(skip_locked=True)
            .filter(Q(state__in=[SmsMessage.State.QUEUED, SmsMessage.State.FAILED])
                    | Q(state=SmsMessage.State.SENDING, next_attempt_at__lte=now), pk=message_id)
            .exclude(not_before__gt=now)
            .first()
        )
        if message is None:
            return None
        if message.state == SmsMessage.State.SENDING and not settings.SMS_GATEWAY_DEDUPLICATES:
            message.state = SmsMessage.State.DEAD
            message.last_error = "outcome unknown: the worker stopped during the send"
            message.save(update_fields=["state", "last_error"])  # text kept: a person may requeue it
            logger.warning("sms %s attempt %s: outcome unknown, not re-sent", message.pk, message.attempts)
            return None
        message.attempts += 1
        message.state = SmsMessage.State.SENDING
        message.next_attempt_at = now + SEND_LEASE
        message.save(update_fields=["state", "attempts", "next_attempt_at"])
    return message


def sms_deliver(*, message_id: int) -> SmsMessage | None:
    """Send one message: claim (short transaction), call the gateway outside any transaction,
    record the outcome (another short one). Safe to run twice or concurrently."""
    message = sms_claim(message_id=message_id)
    if message is None:
        return None
    unknown = False  # outcome unknown and the gateway does not de-duplicate: never re-sent
    try:
        provider_id = get_backend().send(
            phone=pii.decrypt(message.phone_encrypted), body=sms_outgoing_text(message),
            idempotency_key=message.idempotency_key,
        )
    except SmsSendError as exc:
        unknown = _outcome_unknown(exc) and not settings.SMS_GATEWAY_DEDUPLICATES
        if unknown:
            message.state = SmsMessage.State.DEAD
            message.last_error = f"outcome unknown: {exc}"[:200]
        else:
            message.state = SmsMessage.State.DEAD if message.attempts >= MAX_ATTEMPTS else SmsMessage.State.FAILED
            message.last_error = str(exc)[:200]
        message.next_attempt_at = clock.now() + _backoff(message.attempts)
        logger.warning("sms %s attempt %s failed: %s", message.pk, message.attempts, message.last_error)
    else:
        message.state = SmsMessage.State.SENT
        message.provider_id = provider_id[:64]
        message.sent_at = clock.now()
        message.last_error = ""
    final = message.state in (SmsMessage.State.SENT, SmsMessage.State.DEAD) and not unknown
    if final:
        message.pending_encrypted = ""  # sent or given up: the live text is needed no more
    # Only if the row is still ours (this attempt, still sending): a late answer never
    # overwrites a newer attempt's outcome.
    SmsMessage.objects.filter(pk=message.pk, state=SmsMessage.State.SENDING, attempts=message.attempts).update(
        state=message.state, next_attempt_at=message.next_attempt_at, provider_id=message.provider_id,
        sent_at=message.sent_at, last_error=message.last_error,
        **({"pending_encrypted": ""} if final else {}))
    return message


@dataclass(frozen=True)
class SmsRequeueResult:
    requeued: int
    needs_new_credential: int  # carried a code or link whose live text is gone: issue a new one


def sms_requeue(*, messages: QuerySet[SmsMessage]) -> SmsRequeueResult:
    """A person sends dead or failed SMS again (after a gateway outage, a wrong setting).

    `messages`: any selection (an admin changelist's, bounded by the caller); only its dead or
    failed messages are touched, in one UPDATE, and one drain task per SMS queue sends them
    (the beat's sms_deliver_due picks up any whose publish is lost), so the number of rows costs
    no Python loop and no message per row. Attempts start again from zero and the row keeps its
    idempotency key, so a gateway that de-duplicates still delivers once. A message whose
    one-time code or link was wiped when it was given up is not re-sent (the stored text is
    masked and would open nothing): the code is requested again, the link issued again from the
    task page. Safe to repeat."""
    from healthkit import queues, tasks

    sendable = SmsMessage.objects.filter(
        pk__in=messages.order_by().values("pk"), state__in=[SmsMessage.State.DEAD, SmsMessage.State.FAILED],
    )
    wiped = Q(pending_encrypted="", body__contains=MASKED)
    with transaction.atomic():
        stale = sendable.filter(wiped).count()
        requeued = sendable.exclude(wiped).update(
            state=SmsMessage.State.QUEUED, attempts=0, next_attempt_at=clock.now(), last_error="",
        )
        if requeued:
            queues.publish_on_commit(tasks.sms_drain, [(True,)], queue=queues.CODES)
            queues.publish_on_commit(tasks.sms_drain, [(False,)], queue=queues.NOTIFICATIONS)
    logger.info("sms requeued: %s, needing a new code or link: %s", requeued, stale)
    return SmsRequeueResult(requeued=requeued, needs_new_credential=stale)


def sms_due_ids(limit: int = 500, *, urgent: bool | None = None) -> list[int]:
    """Messages to send now: queued or failed past their backoff, or sending past their lease.
    `urgent` narrows to the codes queue's purposes (True) or the others (False)."""
    from healthkit import queues

    due = SmsMessage.objects.filter(
        state__in=[SmsMessage.State.QUEUED, SmsMessage.State.FAILED, SmsMessage.State.SENDING],
        next_attempt_at__lte=clock.now(),
    )
    if urgent is not None:
        due = due.filter(queues.urgent_sms_q()) if urgent else due.exclude(queues.urgent_sms_q())
    return list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def sms_drain(*, urgent: bool, budget: float = DRAIN_BUDGET_SECONDS) -> int:
    """Send the due messages of one queue, oldest first, until none is left or `budget`
    seconds have passed (the next sweep continues). Returns messages sent."""
    started, sent = time.monotonic(), 0
    while time.monotonic() - started < budget:
        ids = sms_due_ids(100, urgent=urgent)
        if not ids:
            break
        progress = False
        for message_id in ids:
            message = sms_deliver(message_id=message_id)
            if message is not None and message.state == SmsMessage.State.SENT:
                sent += 1
                progress = True
            if time.monotonic() - started >= budget:
                break
        if not progress:
            break
    return sent


MAX_RECEIPTS = 10_000
RECEIPT_STATES = {"delivered": SmsMessage.State.DELIVERED, "undelivered": SmsMessage.State.UNDELIVERED}


def sms_receipts_record(receipts: list[Any]) -> dict[str, Any]:
    """Record the gateway's delivery receipts: a SENT message becomes DELIVERED or UNDELIVERED
    (set-wise, one UPDATE). Idempotent: a receipt for a message already final, or for an id we
    do not know (yet: the send may not have committed), changes nothing and is listed under
    `not_recorded` so the gateway can send it again later. Bad receipts are reported by index."""
    from healthkit.errors import ApplicationError

    if not isinstance(receipts, list):
        raise ApplicationError(_("Send a JSON object with a `receipts` list."))
    if len(receipts) > MAX_RECEIPTS:
        raise ApplicationError(_("At most %(n)d receipts per request.") % {"n": MAX_RECEIPTS},
                               extra={"max_receipts": MAX_RECEIPTS, "received": len(receipts)})
    now = clock.now()
    rejected: list[dict[str, Any]] = []
    good: dict[str, tuple[str, dt.datetime, str]] = {}  # provider id -> (state, at, error); first wins
    for index, receipt in enumerate(receipts):
        errors: dict[str, str] = {}
        if not isinstance(receipt, dict):
            rejected.append({"index": index, "errors": {"receipt": _("Each receipt is a JSON object.")}})
            continue
        # Every field through the one input boundary (healthkit.inputs): wrong JSON types, control
        # characters, offsets PostgreSQL cannot store, implausible years are field errors.
        fields = {
            "id": lambda v: inputs.text(v, max_length=64),
            "status": lambda v: RECEIPT_STATES[inputs.choice(v, RECEIPT_STATES, _('Must be "delivered" or "undelivered".'))],
            "at": lambda v: inputs.instant(v, required=False) or now,
            "error": lambda v: inputs.text(v, max_length=200, required=False, multiline=True),
        }
        values: dict[str, Any] = {}
        for name, parse in fields.items():
            try:
                values[name] = parse(receipt.get(name))
            except inputs.InputError as exc:
                errors[name] = exc.message
        if errors:
            rejected.append({"index": index, "errors": errors})
            continue
        good.setdefault(values["id"], (values["status"], min(values["at"], now), values["error"]))
    recorded: list[str] = []
    if good:
        ids = list(good)
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE healthkit_smsmessage m
                SET state = r.state, delivered_at = r.at,
                    last_error = CASE WHEN r.state = 'undelivered' THEN r.error ELSE m.last_error END
                FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::text[]) AS r(provider_id, state, at, error)
                WHERE m.provider_id = r.provider_id AND m.provider_id <> '' AND m.state = 'sent'
                RETURNING m.provider_id
                """,
                [ids, [good[i][0] for i in ids], [good[i][1] for i in ids], [good[i][2] for i in ids]],
            )
            recorded = [row[0] for row in cursor.fetchall()]
    done = set(recorded)
    return {"received": len(receipts), "recorded": len(done), "rejected": rejected,
            "not_recorded": [i for i in good if i not in done]}
