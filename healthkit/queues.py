"""Celery queues by urgency, and publishing that never turns a committed change into an error.

Five queues, each consumed by its own worker(s) so slow work never holds up urgent work:

| queue | what | why apart |
|---|---|---|
| `codes` | one-time codes and emergency notices (SMS) | a resident is waiting at the screen |
| `engine` | popup evaluation after ingest, engine sweeps, venue exposure runs | lifts must not wait behind HTTP calls |
| `notifications` | every other SMS, clearance links | bulk; bounded by the SMS gateway |
| `outbox` | deliveries to the downstream ticket systems | bounded by slow or failing endpoints |
| `sweeps` | periodic clean-ups and re-derivation jobs (the default queue) | may run long; nobody waits on them |

Routes are in settings (`CELERY_TASK_ROUTES`); an SMS goes to `codes` or `notifications` by its
purpose (`sms_queue`). Every task is idempotent and every queue's work is also re-derived
from database rows by a beat job, so a lost message delays work but never loses it.
"""

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Q

logger = logging.getLogger(__name__)

CODES, ENGINE, NOTIFICATIONS, OUTBOX, SWEEPS = "codes", "engine", "notifications", "outbox", "sweeps"
QUEUES = (CODES, ENGINE, NOTIFICATIONS, OUTBOX, SWEEPS)

# SMS purposes a resident waits for: sent on `codes`. A new urgent purpose is named `*_code` or
# `emergency*` (or listed here).
URGENT_SMS_PURPOSES = frozenset({"appeal_code"})


def sms_is_urgent(purpose: str) -> bool:
    return purpose in URGENT_SMS_PURPOSES or purpose.endswith("_code") or purpose.startswith("emergency")


def urgent_sms_q() -> Q:
    """`sms_is_urgent` as a filter on SmsMessage."""
    return Q(purpose__in=URGENT_SMS_PURPOSES) | Q(purpose__endswith="_code") | Q(purpose__startswith="emergency")


def sms_queue(purpose: str) -> str:
    return CODES if sms_is_urgent(purpose) else NOTIFICATIONS


def publish(task: Any, args_list: Iterable[Sequence[Any]], *, queue: str | None = None) -> int:
    """Publish `task` once per args; stop at the first broker error and log it (no personal
    data: task name and counts only). The database rows behind the work are the promise: a beat
    job picks up what was not published. Returns how many were published."""
    sent = 0
    pending = list(args_list)
    for args in pending:
        try:
            if queue:
                task.apply_async(args=tuple(args), queue=queue)
            else:
                task.delay(*args)  # routed by CELERY_TASK_ROUTES
        except Exception:  # broker down of any kind: the sweep catches up
            logger.exception("publish of %s failed after %s of %s; the periodic sweep will pick the rest up",
                             getattr(task, "name", task), sent, len(pending))
            return sent
        sent += 1
    return sent


def publish_on_commit(task: Any, args_list: Iterable[Sequence[Any]], *, queue: str | None = None) -> None:
    """After the caller's transaction commits, publish (see `publish`). A broker error is
    logged, never raised: the request that committed the data still answers success."""
    pending = [tuple(a) for a in args_list]
    if pending:
        transaction.on_commit(lambda: publish(task, pending, queue=queue), robust=True)


def call_on_commit(func: Callable[[], Any]) -> None:
    """`transaction.on_commit` for a publish whose loss a beat job repairs: errors are logged."""
    transaction.on_commit(func, robust=True)
