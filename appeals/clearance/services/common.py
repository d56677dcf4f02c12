"""Shared by the clearance services: the task state machine, its event log and the resident's SMS."""

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from appeals.clearance.models import (
    ClearanceEvent,
    ClearanceTask,
)
from communities import pii
from communities.models import User
from healthkit import clock
from healthkit.concurrency import check_seen
from healthkit.errors import ApplicationError, IllegalTransition
from healthkit.notify import resident_record_phone, resident_sms


def _event(*, task: ClearanceTask, kind: str, actor: User | None = None, actor_label: str = "",
           reason: str = "", data: dict[str, Any] | None = None, from_state: str = "", to_state: str = "",
           at: dt.datetime | None = None) -> ClearanceEvent:
    return ClearanceEvent.objects.create(
        task=task, kind=kind, actor=actor,
        actor_label=actor_label or (actor.get_username() if actor else "system"),
        reason=reason, data=data or {}, from_state=from_state, to_state=to_state, at=at or clock.now(),
    )


def sla_hours_for(priority: int) -> int:
    if priority == ClearanceTask.Priority.EMERGENCY:
        return settings.CLEARANCE_SLA_EMERGENCY_HOURS
    return settings.CLEARANCE_SLA_HOURS


def _resident_phone(task: ClearanceTask) -> str | None:
    """Where the resident's SMS goes: the phone they confirmed, the appeal's, else their primary.
    The phone of a filer not confirmed as the resident (not on record) is never used: the
    community's links and decisions are about the resident's record, not that filer's filing."""
    from appeals.notices import filer_confirmed

    appeal_phone = task.appeal.contact_phone_encrypted if task.appeal_id and filer_confirmed(task.appeal) else ""
    for encrypted in (task.contact_phone_encrypted, appeal_phone):
        if encrypted:
            return pii.decrypt(encrypted)
    return resident_record_phone(task.resident)


def task_sms_reference(task: ClearanceTask) -> str:
    """The number the resident follows: their appeal's reference, else the task's."""
    return task.appeal.reference if task.appeal_id else task.reference


def _notify(*, task: ClearanceTask, purpose: str, key: str, compose: Callable[[], str],
            idempotency_key: str = "", urgent: bool = False, at: dt.datetime | None = None) -> None:
    """Queue one SMS to the resident (idempotent on `key`, or on `idempotency_key` when the change
    has a key shared with another sender, e.g. a popup's closure); no phone on record, no SMS.

    `compose` builds the text, run in the resident's language (their appeal's, else the site's),
    whatever language the worker's console is in; healthkit.notify adds the signature, the
    reference and the official-site footer, and holds non-urgent news during quiet hours.
    """
    if task.priority == ClearanceTask.Priority.EMERGENCY:
        purpose = f"emergency_{purpose}"  # the codes queue's worker sends it (healthkit/queues.py)
    resident_sms(
        phone=_resident_phone(task), key=idempotency_key or f"clearance:{task.pk}:{key}", purpose=purpose,
        compose=compose, reference=task_sms_reference(task), resident=task.resident,
        language=(task.appeal.language or None) if task.appeal_id else None,
        urgent=urgent or task.priority == ClearanceTask.Priority.EMERGENCY, at=at,
    )


@transaction.atomic
def clearance_task_transition(*, task: ClearanceTask, to: str, kind: str, actor: User | None = None,
                              actor_label: str = "", reason: str = "", data: dict[str, Any] | None = None,
                              at: dt.datetime | None = None, allow_same: bool = False,
                              seen: str | None = None, **fields: Any) -> ClearanceTask:
    """Move a task to `to` under a row lock, checking the table; sets `fields` and logs the event.
    `allow_same` lets a step re-enter the state it is in (a second checkpoint call on a task in measures).

    Raises IllegalTransition when the table forbids the move (e.g. deciding a closed task), and
    ChangedSinceSeen when the task changed since a page showed version `seen` (healthkit.concurrency).
    """
    at = at or clock.now()
    locked = ClearanceTask.objects.select_for_update().get(pk=task.pk)
    check_seen(locked, seen)
    if not (allow_same and to == locked.state) and to not in ClearanceTask.TRANSITIONS[locked.state]:
        raise IllegalTransition(
            _("A task that is %(state)s cannot become %(to)s.")
            % {"state": locked.get_state_display(), "to": ClearanceTask.State(to).label},
            extra={"from": locked.state, "to": to, "task": locked.pk},
        )
    from_state = locked.state
    locked.state = to
    if to in ClearanceTask.CLOSED_STATES:
        locked.closed_at = at
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save()
    _event(task=locked, kind=kind, actor=actor, actor_label=actor_label, reason=reason, data=data,
           from_state=from_state, to_state=to, at=at)
    return locked


def check_not_closed(task: ClearanceTask) -> None:
    if not task.is_open:
        raise ApplicationError(_("This task is already closed."), extra={"task": task.pk})


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Please give a reason; the resident and the audit see it."))
    return reason


def _fmt(instant: dt.datetime) -> str:
    return timezone.localtime(instant).strftime("%Y-%m-%d %H:%M")


def _day_start(start: dt.datetime, day: int) -> dt.datetime:
    """Local midnight of day `day` counted from `start` (day 1 is the day of `start`)."""
    local = timezone.localtime(start)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=day - 1)
    return midnight if day > 1 else start

