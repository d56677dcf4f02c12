"""Celery tasks of the popup core: thin, take primary keys, safe to run twice.

Queues (healthkit/queues.py): SMS on `codes` or `notifications` by purpose, engine work on
`engine`, downstream deliveries on `outbox`, beat jobs without a queue of their own on `sweeps`.
"""

from typing import Any

from celery import Task, shared_task

from healthkit import queues, sms
from healthkit.taskbase import HealthkitTask


@shared_task(acks_late=True, ignore_result=True)
def sms_deliver(message_id: int) -> None:
    """Send one message (published on commit to the queue of its purpose)."""
    sms.sms_deliver(message_id=message_id)


@shared_task(acks_late=True, ignore_result=True)
def sms_drain(urgent: bool) -> int:
    """Send the due messages of one queue for up to two minutes."""
    return sms.sms_drain(urgent=urgent)


@shared_task(acks_late=True, ignore_result=True)
def sms_deliver_due() -> int:
    """Beat: failed messages past their backoff, sends whose worker died (lease expired) and
    any lost publish. One drain task per queue with due messages, so a burst of links never
    holds up a code. Returns how many messages are due."""
    due = 0
    for urgent, queue in ((True, queues.CODES), (False, queues.NOTIFICATIONS)):
        ids = sms.sms_due_ids(urgent=urgent)
        if ids:
            due += len(ids)
            queues.publish(sms_drain, [(urgent,)], queue=queue)
    return due


@shared_task(acks_late=True, ignore_result=True)
def popup_closed_notify() -> int:
    """Beat: text residents whose popup was lifted or withdrawn, once per popup (idempotent)."""
    from healthkit import notify

    return notify.popup_closed_notify()


# --- Popup engine and outbox ---------------------------------------------------------------


# A lost connection or a lock timeout is worth another try (every task's base, HealthkitTask);
# the engine tasks are idempotent. Retries are a convenience, not the guarantee: the work rows
# stay until an evaluation commits, and `engine_work_due` takes whatever a task gave up on.


class _ResidentIdsTask(HealthkitTask):
    """A task whose argument is a list of up to 1,000 resident ids (engine_work.CHUNK): its
    message's `argsrepr` (the arguments as worker logs and monitors show them) gives their
    number, not Celery's saferepr of the list, which walks it to 1,024 characters: about 3 ms a
    message, 10 messages after every ingest batch of 10,000 results (docs/engine.md)."""

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        if args and isinstance(args[0], list):
            options.setdefault("argsrepr", f"([{len(args[0])} resident ids],)")
        return super().apply_async(args, kwargs, **options)


@shared_task(acks_late=True, ignore_result=True)
def engine_evaluate_work(work_id: int) -> int:
    """Event-driven re-evaluation of the residents a committed batch touched: the message names
    the batch's work row (EngineWork), which holds them. Returns residents evaluated (0: the row
    was taken already)."""
    from healthkit import engine_work

    return engine_work.evaluate_work(work_id=work_id)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def engine_evaluate_batch(self: Task, work_ids: list[int]) -> int:
    """A commit's one message when it wrote several work rows: the other rows' messages sent from
    here (not from the lab's request), the first row evaluated. A retry does not send them again.
    Returns residents evaluated here."""
    from healthkit import engine_work

    return engine_work.evaluate_batch(work_ids=work_ids, fan_out=not self.request.retries)


@shared_task(base=_ResidentIdsTask, acks_late=True, ignore_result=True)
def engine_evaluate_residents(resident_ids: list[int]) -> None:
    """The same for messages queued before they named the work row (the resident ids
    themselves): still accepted, so a deploy loses none of them."""
    from healthkit import engine_work

    engine_work.evaluate_now(resident_ids=resident_ids)


@shared_task(acks_late=True, ignore_result=True)
def engine_work_due() -> int:
    """Beat, every minute: evaluate the residents whose work rows no task took (broker down,
    task lost or given up). Returns residents evaluated."""
    from healthkit import engine_work

    return engine_work.evaluate_due()


@shared_task(acks_late=True, ignore_result=True)
def engine_sweep() -> None:
    """Beat: time-based changes for everyone, set-wise (skips if a sweep is already running)."""
    from healthkit import engine

    engine.sweep()


@shared_task(acks_late=True, ignore_result=True)
def idempotent_requests_purge() -> int:
    """Beat, hourly: forget expired Idempotency-Keys of REST POSTs and the answers kept with them."""
    from healthkit import services

    return services.idempotent_requests_purge()


@shared_task(acks_late=True, ignore_result=True)
def outbox_deliver_endpoint(endpoint_id: int) -> None:
    from healthkit import outbox

    outbox.deliver_endpoint(endpoint_id=endpoint_id)


@shared_task(acks_late=True, ignore_result=True)
def outbox_dispatch_due() -> None:
    """Beat (and after each change): one delivery task per endpoint with due rows."""
    from healthkit import outbox

    queues.publish(outbox_deliver_endpoint, [(pk,) for pk in outbox.endpoints_with_due_rows()])
