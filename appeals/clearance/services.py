"""Writes of community clearance: open a task, send the resident's link, record what they
confirm, investigate, decide and lift. Each function runs in one transaction and writes a
ClearanceEvent; SMS go through the healthkit outbox in that same transaction."""

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _

from appeals.clearance.models import ClearanceEvent, ClearanceLink, ClearanceTask
from appeals.models import Appeal
from communities import pii
from communities.models import Community, Resident, User
from healthkit import clock
from healthkit.errors import ApplicationError, IllegalTransition
from healthkit.models import PopupCase
from healthkit.sms import sms_enqueue

_LINK_SIGNER_SALT = "clearance.link"


# --- helpers ---------------------------------------------------------------------------------


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
    """Where the resident's SMS goes: the phone they confirmed, the appeal's, else their primary."""
    for encrypted in (task.contact_phone_encrypted,
                      task.appeal.contact_phone_encrypted if task.appeal_id else ""):
        if encrypted:
            return pii.decrypt(encrypted)
    phone = task.resident.phones.order_by("-is_primary", "id").first()
    return phone.reveal_phone() if phone else None


def _notify(*, task: ClearanceTask, purpose: str, body: str, key: str) -> None:
    """Queue one SMS to the resident (idempotent on `key`); no phone on record, no SMS."""
    phone = _resident_phone(task)
    if phone is None:
        return
    sms_enqueue(phone=phone, body=body, purpose=purpose, idempotency_key=f"clearance:{task.pk}:{key}",
                resident=task.resident)


def _sms_footer() -> str:
    return _("Official site: %(site)s. This service is free: nobody will ever ask you for money.") % {
        "site": settings.OFFICIAL_SITE_URL,
    }


@transaction.atomic
def clearance_task_transition(*, task: ClearanceTask, to: str, kind: str, actor: User | None = None,
                              actor_label: str = "", reason: str = "", data: dict[str, Any] | None = None,
                              at: dt.datetime | None = None, **fields: Any) -> ClearanceTask:
    """Move a task to `to` under a row lock, checking the table; sets `fields` and logs the event.

    Raises IllegalTransition when the table forbids the move (e.g. deciding a closed task).
    """
    at = at or clock.now()
    locked = ClearanceTask.objects.select_for_update().get(pk=task.pk)
    if to != locked.state and to not in ClearanceTask.TRANSITIONS[locked.state]:
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


# --- opening tasks and links ------------------------------------------------------------------


def _open_task_for(*, popup: PopupCase | None, appeal: Appeal | None) -> ClearanceTask | None:
    match = Q()
    if popup is not None:
        match |= Q(popup=popup)
    if appeal is not None:
        match |= Q(appeal=appeal)
    if not match:
        return None
    return (ClearanceTask.objects.select_for_update()
            .filter(match, state__in=ClearanceTask.OPEN_STATES).order_by("id").first())


@transaction.atomic
def clearance_task_open(
    *,
    resident: Resident,
    community: Community,
    origin: str,
    popup: PopupCase | None = None,
    appeal: Appeal | None = None,
    priority: int = ClearanceTask.Priority.NORMAL,
    actor: User | None = None,
    reason: str = "",
    send_link: bool = True,
    at: dt.datetime | None = None,
) -> tuple[ClearanceTask, bool]:
    """Open the community's task for a popup or appeal, or return the open one (idempotent).

    An appeal routed for a popup that already has an open task joins it (and raises its priority
    if the appeal is more urgent). A new task sends the resident a link SMS when `send_link`.
    """
    at = at or clock.now()
    existing = _open_task_for(popup=popup, appeal=appeal)
    if existing is not None:
        return _join(task=existing, appeal=appeal, priority=priority, actor=actor, at=at), False
    try:
        with transaction.atomic():
            task = ClearanceTask.objects.create(
                resident=resident, community=community, origin=origin, popup=popup, appeal=appeal,
                priority=priority, sla_due_at=at + dt.timedelta(hours=sla_hours_for(priority)),
                outside_since=appeal.outside_since if appeal else None,
                wishes_to_return=bool(appeal and appeal.wishes_to_return),
                commitment_required=origin in (ClearanceTask.Origin.CHECKPOINT, ClearanceTask.Origin.RISK_LINK),
                created_at=at,
            )
    except IntegrityError:
        # A concurrent opener won the partial unique index: join its task.
        existing = _open_task_for(popup=popup, appeal=appeal)
        if existing is None:
            raise
        return _join(task=existing, appeal=appeal, priority=priority, actor=actor, at=at), False
    _event(task=task, kind=ClearanceEvent.Kind.OPENED, actor=actor, reason=reason, to_state=task.state,
           data={"origin": origin, "popup": popup.pk if popup else None, "appeal": appeal.pk if appeal else None},
           at=at)
    if send_link:
        clearance_link_issue(task=task, at=at)
    return task, True


def _join(*, task: ClearanceTask, appeal: Appeal | None, priority: int, actor: User | None,
          at: dt.datetime) -> ClearanceTask:
    changed = []
    if appeal is not None and task.appeal_id is None:
        task.appeal = appeal
        task.wishes_to_return = task.wishes_to_return or appeal.wishes_to_return
        task.outside_since = task.outside_since or appeal.outside_since
        changed += ["appeal", "wishes_to_return", "outside_since"]
        _event(task=task, kind=ClearanceEvent.Kind.APPEAL_JOINED, actor=actor, data={"appeal": appeal.pk}, at=at)
    if priority < task.priority:
        due = at + dt.timedelta(hours=sla_hours_for(priority))
        task.priority = priority
        task.sla_due_at = min(task.sla_due_at, due) if task.sla_due_at else due
        changed += ["priority", "sla_due_at"]
        _event(task=task, kind=ClearanceEvent.Kind.PRIORITISED, actor=actor, data={"priority": priority}, at=at)
    if changed:
        task.save(update_fields=[*changed, "updated_at"])
    return task


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _signer() -> signing.Signer:
    return signing.Signer(salt=_LINK_SIGNER_SALT, sep=".")


def link_url(token: str) -> str:
    return settings.OFFICIAL_SITE_URL.rstrip("/") + reverse("clearance:link", args=[token])


@transaction.atomic
def clearance_link_issue(*, task: ClearanceTask, purpose: str = ClearanceLink.Purpose.CONFIRM,
                         at: dt.datetime | None = None) -> tuple[ClearanceLink, str]:
    """Create a one-time link and queue the SMS carrying it. Returns (link, signed token).

    The URL carries only an opaque signed random token; the database keeps its hash. Earlier
    unused links of the same purpose are revoked, so only the latest SMS works.
    """
    at = at or clock.now()
    raw = secrets.token_urlsafe(24)
    ClearanceLink.objects.filter(task=task, purpose=purpose, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=at)
    link = ClearanceLink.objects.create(
        task=task, purpose=purpose, token_hash=_token_hash(raw), created_at=at,
        expires_at=at + dt.timedelta(hours=settings.CLEARANCE_LINK_TTL_HOURS),
    )
    token = _signer().sign(raw)
    if purpose == ClearanceLink.Purpose.COMMITMENT:
        text = _("Your community %(community)s asks you to sign the commitment letter online: %(url)s "
                 "(valid until %(until)s, works once).")
    else:
        text = _("Your community %(community)s needs you to confirm your details so it can review your "
                 "health-kit popup: %(url)s (valid until %(until)s, works once).")
    body = text % {
        "community": task.community.name, "url": link_url(token),
        "until": clock_local(link.expires_at).strftime("%Y-%m-%d %H:%M"),
    } + " " + _sms_footer()
    _notify(task=task, purpose=f"clearance_{purpose}", body=body, key=f"link:{link.pk}")
    _event(task=task, kind=ClearanceEvent.Kind.LINK_SENT, data={"purpose": purpose, "link": link.pk,
                                                                "expires_at": link.expires_at.isoformat()}, at=at)
    return link, token


def clock_local(instant: dt.datetime) -> dt.datetime:
    from django.utils import timezone

    return timezone.localtime(instant)


def clearance_open_for_appeal(*, appeal: Appeal) -> ClearanceTask | None:
    """The community's task for a routed appeal (idempotent). Returns None if the appeal is not
    (or no longer) routed to a community."""
    community = appeal.routed_community or appeal.community
    if not appeal.is_open or community is None:
        return None
    priority = min(int(appeal.priority), ClearanceTask.Priority.NORMAL)
    task, _created = clearance_task_open(
        resident=appeal.resident, community=community, origin=ClearanceTask.Origin.APPEAL,
        popup=appeal.popup if appeal.popup_id and appeal.popup.is_open else None, appeal=appeal,
        priority=priority, reason=_("Appeal %(ref)s routed to the community.") % {"ref": appeal.reference},
    )
    return task


def check_not_closed(task: ClearanceTask) -> None:
    if not task.is_open:
        raise ApplicationError(_("This task is already closed."), extra={"task": task.pk})
