"""Celery tasks of the popup core: thin, take primary keys, safe to run twice."""

from celery import shared_task
from django.db import OperationalError

from healthkit import sms
from healthkit.errors import TransientError


@shared_task(acks_late=True, ignore_result=True)
def sms_deliver(message_id: int) -> None:
    sms.sms_deliver(message_id=message_id)


@shared_task(acks_late=True, ignore_result=True)
def sms_deliver_due() -> int:
    """Beat sweep: retries failed messages whose backoff has passed, and any missed on-commit."""
    ids = sms.sms_due_ids()
    for message_id in ids:
        sms.sms_deliver(message_id=message_id)
    return len(ids)


# --- Popup engine and outbox ---------------------------------------------------------------


# A lost connection or a lock timeout is worth another try; both engine tasks are idempotent.
_ENGINE_RETRY = {"autoretry_for": (OperationalError, TransientError), "retry_backoff": True,
                 "retry_backoff_max": 60, "max_retries": 5}


@shared_task(acks_late=True, ignore_result=True, **_ENGINE_RETRY)
def engine_evaluate_residents(resident_ids: list[int]) -> None:
    """Event-driven re-evaluation of the residents a committed batch touched (ids only)."""
    from healthkit import engine

    engine.evaluate(resident_ids=resident_ids)


@shared_task(acks_late=True, ignore_result=True, **_ENGINE_RETRY)
def engine_sweep() -> None:
    """Beat: time-based changes for everyone, set-wise (skips if a sweep is already running)."""
    from healthkit import engine

    engine.sweep()


@shared_task(acks_late=True, ignore_result=True)
def outbox_deliver_endpoint(endpoint_id: int) -> None:
    from healthkit import outbox

    outbox.deliver_endpoint(endpoint_id=endpoint_id)


@shared_task(acks_late=True, ignore_result=True)
def outbox_dispatch_due() -> None:
    """Beat (and after each change): one delivery task per endpoint with due rows."""
    from healthkit import outbox

    for endpoint_id in outbox.endpoints_with_due_rows():
        outbox_deliver_endpoint.delay(endpoint_id)
