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


def lock_task(pk: int, *related: str) -> ClearanceTask:
    """The task's row locked, then read with `related`. The lock is taken on the row alone: with
    a join, PostgreSQL re-checks a row another transaction changed meanwhile against the joined
    rows it read before waiting, so a task the hotline had just moved to another community (or
    linked to another popup) was not found at all (DoesNotExist, a 500) instead of refused."""
    ClearanceTask.objects.select_for_update(of=("self",)).filter(pk=pk).values_list("pk").first()
    return ClearanceTask.objects.select_related(*related).get(pk=pk)


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
    check_still_in_scope(locked, actor)
    if locked.state in ClearanceTask.CLOSED_STATES:
        # Someone else decided first (a colleague, the hotline withdrawing it, a sweep): say who,
        # rather than only that the page is stale.
        raise IllegalTransition(closed_task_message(locked), extra={"from": locked.state, "to": to, "task": locked.pk})
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
        locked.on_hold_since = None  # nothing waits on a closed task
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save()
    withdrawn = task_requirements_withdraw(locked, at=at) if to in TASK_ENDS_WITHOUT_MEASURES else []
    if withdrawn:
        data = {**(data or {}), "requirements_withdrawn": withdrawn}
    _event(task=locked, kind=kind, actor=actor, actor_label=actor_label, reason=reason, data=data,
           from_state=from_state, to_state=to, at=at)
    return locked


# A task that ends closed (withdrawn by the hotline, its popup ended elsewhere) or rejected has no
# one following its measures any more: the tests it required and not yet due are withdrawn with
# it. A lift or an acceptance keeps them: the community decided with them.
TASK_ENDS_WITHOUT_MEASURES = (ClearanceTask.State.CLOSED, ClearanceTask.State.REJECTED)


def task_requirements_withdraw(task: ClearanceTask, *, at: dt.datetime) -> list[int]:
    """Withdraw the tests the task required (investigation or checkpoint days, `source_ref`
    "clearance:<task>:...") whose deadline has not passed; they were required by this task only.
    Returns their ids (the task's closing event records them)."""
    from healthkit.services import test_requirements_withdraw

    return test_requirements_withdraw(resident_id=task.resident_id, source_prefix=f"clearance:{task.pk}:", at=at)


def closed_task_message(task: ClearanceTask) -> str:
    """Why nothing more can be done on a closed task, for the person who tried: who closed it,
    when and why, and that their own action was not recorded (nothing reached the resident)."""
    closing = (ClearanceEvent.objects.filter(task=task, to_state=task.state).order_by("-at", "-id").first()
               if task.pk else None)
    if closing is None:
        return _("This task is already closed. Nothing you sent was recorded and the resident was not texted.")
    values = {"when": _fmt(closing.at), "who": closing.actor_label or _("the system"),
              "state": task.get_state_display(), "reason": (closing.reason or "").rstrip(".。!！ ")[:200],
              "appeal": (closing.data or {}).get("reference", "")}
    if closing.kind == ClearanceEvent.Kind.WITHDRAWN:
        return _("The hotline withdrew this task on %(when)s: %(who)s closed appeal %(appeal)s (%(reason)s). "
                 "Your decision was not recorded and the resident was not texted.") % values
    return _("This task was already closed on %(when)s (%(state)s, by %(who)s). Your decision was not "
             "recorded and the resident was not texted.") % values


def check_not_closed(task: ClearanceTask) -> None:
    if not task.is_open:
        raise ApplicationError(closed_task_message(task), extra={"task": task.pk})


def check_still_in_scope(task: ClearanceTask, actor: User | None) -> None:
    """A community worker acts on a locked task only while it is one of their communities': the
    hotline may have re-routed the appeal (and the task with it) after their page was shown."""
    if actor is None or actor.role != User.Role.COMMUNITY_WORKER:
        return
    from appeals.clearance.selectors import tasks_visible_to

    if not tasks_visible_to(actor).filter(pk=task.pk).exists():
        raise ApplicationError(
            _("The hotline moved this task to %(community)s, which is not one of your communities. Your "
              "decision was not recorded and the resident was not texted.") % {"community": task.community.name},
            extra={"task": task.pk})


def check_open_and_seen(task: ClearanceTask, seen: str | None) -> None:
    """A decision on a locked task: refused when it is closed (saying who closed it), then when
    the page that posted it is stale (healthkit.concurrency)."""
    check_not_closed(task)
    check_seen(task, seen)


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

