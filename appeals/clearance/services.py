"""Writes of community clearance: open a task, send the resident's link, record what they
confirm, investigate, decide and lift. Each function runs in one transaction and writes a
ClearanceEvent; SMS go through the healthkit outbox in that same transaction."""

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from appeals.clearance.models import (
    CALL_DIRECTIONS,
    CALL_OUTCOMES,
    OPEN_TASK_STATES,
    ClearanceEvent,
    ClearanceLink,
    ClearanceTask,
)
from appeals.models import Appeal
from communities import pii
from communities.models import Community, Resident, User
from healthkit import clock
from healthkit.errors import ApplicationError, IllegalTransition
from healthkit.models import PopupCase
from healthkit.services import (
    health_status_order_create,
    popup_case_transition,
    popup_lift,
    popup_reject_review,
    test_requirement_create,
)
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


def _notify(*, task: ClearanceTask, purpose: str, key: str, compose: Callable[[], str]) -> None:
    """Queue one SMS to the resident (idempotent on `key`); no phone on record, no SMS.

    `compose` builds the text in the residents' language (the site's LANGUAGE_CODE), whatever
    language the worker's console is in; the official-site footer is appended.
    """
    phone = _resident_phone(task)
    if phone is None:
        return
    with translation.override(settings.LANGUAGE_CODE):
        body = compose() + " " + _sms_footer()
    sms_enqueue(phone=phone, body=body, purpose=purpose, idempotency_key=f"clearance:{task.pk}:{key}",
                resident=task.resident)


def _sms_footer() -> str:
    return _("Official site: %(site)s. This service is free: nobody will ever ask you for money.") % {
        "site": settings.OFFICIAL_SITE_URL,
    }


@transaction.atomic
def clearance_task_transition(*, task: ClearanceTask, to: str, kind: str, actor: User | None = None,
                              actor_label: str = "", reason: str = "", data: dict[str, Any] | None = None,
                              at: dt.datetime | None = None, allow_same: bool = False,
                              **fields: Any) -> ClearanceTask:
    """Move a task to `to` under a row lock, checking the table; sets `fields` and logs the event.
    `allow_same` lets a step re-enter the state it is in (a second checkpoint call on a task in measures).

    Raises IllegalTransition when the table forbids the move (e.g. deciding a closed task).
    """
    at = at or clock.now()
    locked = ClearanceTask.objects.select_for_update().get(pk=task.pk)
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
                # The letter is asked for where the popup's policy says so (params
                # "commitment_letter"), on the self-drive route, or later by an investigation.
                commitment_required=origin == ClearanceTask.Origin.CHECKPOINT or _policy_asks_letter(popup),
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


def _policy_asks_letter(popup: PopupCase | None) -> bool:
    policy = popup.policy if popup is not None and popup.policy_id else None
    return bool(policy and policy.params.get("commitment_letter"))


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
                         question: str = "", at: dt.datetime | None = None) -> tuple[ClearanceLink, str]:
    """Create a one-time link and queue the SMS carrying it (with the worker's `question`, if
    any). Returns (link, signed token).

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

    def compose() -> str:
        if purpose == ClearanceLink.Purpose.COMMITMENT:
            text = _("Your community %(community)s asks you to sign the commitment letter online: %(url)s "
                     "(valid until %(until)s, works once).")
        elif question:
            text = _("Your community %(community)s asks: %(question)s Please answer here: %(url)s "
                     "(valid until %(until)s, works once).")
        else:
            text = _("Your community %(community)s needs you to confirm your details so it can review your "
                     "health-kit popup: %(url)s (valid until %(until)s, works once).")
        return text % {
            "community": task.community.name, "url": link_url(token), "question": question,
            "until": timezone.localtime(link.expires_at).strftime("%Y-%m-%d %H:%M"),
        }

    _notify(task=task, purpose=f"clearance_{purpose}", key=f"link:{link.pk}", compose=compose)
    _event(task=task, kind=ClearanceEvent.Kind.LINK_SENT, data={"purpose": purpose, "link": link.pk,
                                                                "expires_at": link.expires_at.isoformat()}, at=at)
    return link, token


@transaction.atomic
def clearance_open_for_appeal(*, appeal: Appeal) -> ClearanceTask | None:
    """The community's task for a routed appeal (idempotent). Returns None if the appeal is not
    (or no longer) routed to a community. If the hotline re-routed the appeal to another
    community, the open task moves there (the earlier community no longer sees it)."""
    community = appeal.routed_community or appeal.community
    if not appeal.is_open or community is None:
        return None
    priority = min(int(appeal.priority), ClearanceTask.Priority.NORMAL)
    task, created = clearance_task_open(
        resident=appeal.resident, community=community, origin=ClearanceTask.Origin.APPEAL,
        popup=appeal.popup if appeal.popup_id and appeal.popup.is_open else None, appeal=appeal,
        priority=priority, reason=_("Appeal %(ref)s routed to the community.") % {"ref": appeal.reference},
    )
    if not created and appeal.routed_community_id and task.community_id != appeal.routed_community_id:
        _event(task=task, kind=ClearanceEvent.Kind.REROUTED,
               data={"from": task.community_id, "to": appeal.routed_community_id},
               reason=_("Appeal %(ref)s re-routed by the hotline.") % {"ref": appeal.reference})
        task.community = appeal.routed_community
        task.save(update_fields=["community", "updated_at"])
    return task


def check_not_closed(task: ClearanceTask) -> None:
    if not task.is_open:
        raise ApplicationError(_("This task is already closed."), extra={"task": task.pk})


# --- the resident's submission through the link -------------------------------------------


class LinkRefused(ApplicationError):
    """The link is tampered, unknown, expired, used or replaced; `extra["reason"]` says which."""


COMMITMENT_LETTER_VERSION = "2022-11"


def commitment_letter_text() -> str:
    return _(
        "I commit that the information I gave is true and complete. On my return I will report to my "
        "community, take the nucleic-acid tests it asks for on the days it names, stay at the address "
        "I gave during any home observation, and tell the community at once if I have a fever, cough "
        "or other symptoms. I understand that false statements have legal consequences."
    )


def token_hash(raw: str) -> str:
    return _token_hash(raw)


def unsign_token(token: str) -> str:
    """The random part of a link token, or LinkRefused("invalid") if the signature does not match."""
    try:
        return _signer().unsign(token)
    except signing.BadSignature as exc:
        raise LinkRefused(_("This link is not valid."), extra={"reason": "invalid"}) from exc


def _consume_link(*, token: str, at: dt.datetime) -> ClearanceLink:
    """Mark the link used with one conditional UPDATE (so two submissions cannot both win).

    The UPDATE names only the link's own columns: a join (Django turns it into `id IN (SELECT
    ...)`) is not re-checked after waiting for a concurrent writer's lock, and let every
    concurrent submission through (tests/clearance/test_link_concurrency.py). The task's state
    is checked after, under the task's row lock; refusing then rolls the UPDATE back.
    """
    digest = _token_hash(unsign_token(token))
    used = ClearanceLink.objects.filter(
        token_hash=digest, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=at,
    ).update(used_at=at)
    link = ClearanceLink.objects.filter(token_hash=digest).first()
    task_open = link is not None and ClearanceTask.objects.select_for_update().filter(
        pk=link.task_id, state__in=ClearanceTask.OPEN_STATES).exists()
    if used != 1 or not task_open:
        from appeals.clearance.selectors import link_status

        reason = link_status(token, at=at).reason if used != 1 else "closed"
        raise LinkRefused(_("This link can no longer be used."), extra={"reason": reason})
    return link


def _start_review(task: ClearanceTask, at: dt.datetime) -> None:
    if task.popup_id and task.popup.state == PopupCase.State.ACTIVE:
        popup_case_transition(case=task.popup, to=PopupCase.State.UNDER_REVIEW, actor_label="clearance",
                              reason=_("The resident confirmed their details to the community."),
                              data={"clearance_task": task.pk}, at=at)


@transaction.atomic
def clearance_confirm_submit(*, token: str, confirmation: dict[str, Any], contact_phone: str = "",
                             signature: str = "", at: dt.datetime | None = None) -> ClearanceTask:
    """Record what the resident submitted through their link; the link is spent in the same
    transaction (works once). `confirmation` holds the form's plain answers (no ID number).

    Raises LinkRefused when the link is tampered, expired, used, replaced or its task closed;
    ApplicationError when the commitment letter is required but not signed.
    """
    at = at or clock.now()
    link = _consume_link(token=token, at=at)
    task = ClearanceTask.objects.select_for_update(of=("self",)).select_related("popup").get(pk=link.task_id)
    needs_letter = task.commitment_required and task.commitment_signed_at is None
    if link.purpose == ClearanceLink.Purpose.COMMITMENT or (needs_letter and signature):
        if not signature.strip():
            raise ApplicationError(_("Please sign the commitment letter by typing your full name."))
        task.commitment_signed_at = at
        task.commitment_digest = hashlib.sha256(
            f"{COMMITMENT_LETTER_VERSION}\n{commitment_letter_text()}\n{signature.strip()}\n{task.pk}\n{at.isoformat()}"
            .encode()).hexdigest()
        _event(task=task, kind=ClearanceEvent.Kind.COMMITMENT_SIGNED, actor_label="resident",
               data={"version": COMMITMENT_LETTER_VERSION, "link": link.pk}, at=at)
    if link.purpose == ClearanceLink.Purpose.CONFIRM:
        task.confirmation = {**confirmation, "submitted_at": at.isoformat()}
        task.confirmed_at = at
        if confirmation.get("outside_since"):
            task.outside_since = dt.date.fromisoformat(confirmation["outside_since"])
        if confirmation.get("location") == "outside":
            task.wishes_to_return = bool(confirmation.get("return_date"))
        if contact_phone:
            number = pii.validate_phone(contact_phone)
            task.contact_phone_encrypted = pii.encrypt(number)
            task.contact_phone_masked = pii.mask_phone(number)
    task.save()
    if link.purpose == ClearanceLink.Purpose.CONFIRM and task.state in (ClearanceTask.State.OPEN,
                                                                         ClearanceTask.State.INFO_REQUESTED):
        task = clearance_task_transition(task=task, to=ClearanceTask.State.CONFIRMED,
                                         kind=ClearanceEvent.Kind.CONFIRMED, actor_label="resident",
                                         data={"link": link.pk}, at=at)
    elif link.purpose == ClearanceLink.Purpose.CONFIRM:
        _event(task=task, kind=ClearanceEvent.Kind.CONFIRMED, actor_label="resident", data={"link": link.pk}, at=at)
    _start_review(task, at)
    clearance_measures_complete(task=task, at=at)
    return task


# --- worker decisions -----------------------------------------------------------------------


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Please give a reason; the resident and the audit see it."))
    return reason


def _close_appeal(task: ClearanceTask, *, actor: User | None, reason: str, outcome: str) -> None:
    if task.appeal_id is None:
        return
    from appeals.services import appeal_close

    appeal_close(appeal=task.appeal, actor=actor, reason=reason[:200], outcome=outcome)


def _link_popup(*, task: ClearanceTask, popup: PopupCase, actor: User | None, actor_label: str,
                at: dt.datetime) -> ClearanceTask:
    """Record on a task opened without a popup the popup its appeal claims (task locked by the
    caller). Raises ApplicationError if another open task already works on that popup."""
    from appeals.clearance.selectors import other_task_message, popup_other_task

    other = popup_other_task(popup=popup, task=task)
    if other is not None:
        raise ApplicationError(other_task_message(other), extra={"task": task.pk, "other_task": other.pk})
    try:
        with transaction.atomic():
            ClearanceTask.objects.filter(pk=task.pk).update(popup=popup, updated_at=at)
    except IntegrityError as exc:  # a concurrent opener took the popup (one open task per popup)
        other = popup_other_task(popup=popup, task=task)
        raise ApplicationError(other_task_message(other) if other else _("Please try again."),
                               extra={"task": task.pk}) from exc
    task.popup = popup
    _event(task=task, kind=ClearanceEvent.Kind.POPUP_LINKED, actor=actor, actor_label=actor_label, at=at,
           reason=_("The appeal reports popup %(n)d and the resident has exactly one open: it is this task's "
                    "popup now.") % {"n": popup.popup_type},
           data={"popup": popup.pk, "popup_type": popup.popup_type, "appeal": task.appeal_id})
    return task


@transaction.atomic
def clearance_accept(*, task: ClearanceTask, actor: User | None, reason: str, actor_label: str = "",
                     at: dt.datetime | None = None) -> ClearanceTask:
    """Accept the resident's return and lift the popup the decision is about, through the
    engine's `popup_lift` (so the ticket-restriction outbox follows); close the appeal with
    outcome "lifted"; text the resident.

    A task opened without a popup (an appeal by phone or Open311, "a popup you don't show")
    first gets the resident's one open popup of the type the appeal reports (event
    "popup_linked"). With still no popup, nothing is claimed that did not happen: the task
    becomes "accepted", the appeal closes with outcome "no_popup", and the SMS says the return
    was accepted, no popup was on record to lift, and to call 12345 if one still shows.

    Raises ApplicationError where `selectors.task_accept_refusal` refuses (popup 3 before its
    investigation's measures are complete, a type no community decision lifts, a popup another
    task handles), IllegalTransition if the task is already decided. Locks the task.
    """
    from appeals.clearance.selectors import task_accept_refusal, task_decision_popup

    at = at or clock.now()
    reason = _require_reason(reason)
    locked = (ClearanceTask.objects.select_for_update(of=("self",))
              .select_related("popup__policy", "appeal", "community", "resident").get(pk=task.pk))
    popup = task_decision_popup(locked) if locked.is_open else None
    refusal = task_accept_refusal(task=locked, popup=popup, at=at)
    if refusal:
        raise ApplicationError(refusal, extra={"task": locked.pk, "popup": popup.pk if popup else None})
    label = actor_label or ("" if actor else "clearance")
    if popup is not None and locked.popup_id is None:
        _link_popup(task=locked, popup=popup, actor=actor, actor_label=label, at=at)
    if popup is None:
        return _accept_without_popup(task=locked, actor=actor, actor_label=actor_label, reason=reason, at=at)
    task = clearance_task_transition(task=locked, to=ClearanceTask.State.LIFTED, kind=ClearanceEvent.Kind.LIFTED,
                                     actor=actor, actor_label=actor_label, reason=reason, at=at,
                                     decided_at=at, decided_by=actor, decision_reason=reason)
    popup = PopupCase.objects.filter(pk=popup.pk).first()
    if popup is not None and popup.is_open:
        popup_lift(case=popup, actor=actor, actor_label=label, reason=reason, authority="community",
                   data={"rule": "community", "clearance_task": task.pk, "community": task.community_id}, at=at)
    _close_appeal(task, actor=actor, reason=reason, outcome="lifted")
    _notify(task=task, purpose="clearance_lifted", key="decision", compose=lambda: _(
        "Your community %(community)s has accepted your return and your health-kit popup has been "
        "lifted. Rail and airline ticket restrictions are cleared by a separate sync; if you still "
        "cannot buy a ticket after 24 hours, call 12345.") % {"community": task.community.name})
    return task


def _accept_without_popup(*, task: ClearanceTask, actor: User | None, actor_label: str, reason: str,
                          at: dt.datetime) -> ClearanceTask:
    """The return accepted with no popup on record to lift: say exactly that (state, appeal
    outcome, SMS)."""
    task = clearance_task_transition(task=task, to=ClearanceTask.State.ACCEPTED, kind=ClearanceEvent.Kind.ACCEPTED,
                                     actor=actor, actor_label=actor_label, reason=reason, at=at,
                                     data={"popup": None}, decided_at=at, decided_by=actor, decision_reason=reason)
    _close_appeal(task, actor=actor, reason=reason, outcome="no_popup")
    _notify(task=task, purpose="clearance_accepted", key="decision", compose=lambda: _(
        "Your community %(community)s has accepted your return. We have no health-kit popup on record "
        "for your request, so none was lifted by this decision. If a popup still shows in your health "
        "kit, please call 12345.") % {"community": task.community.name})
    return task


@transaction.atomic
def clearance_reject(*, task: ClearanceTask, actor: User, reason: str, next_step: str,
                     at: dt.datetime | None = None) -> ClearanceTask:
    """Reject with the next step the resident must take; the popup goes back to active, the
    appeal is closed with outcome "rejected", the resident gets an SMS saying what to do."""
    at = at or clock.now()
    reason = _require_reason(reason)
    if next_step not in ClearanceTask.NextStep.values:
        raise ApplicationError(_("Please choose the next step for the resident."))
    task = clearance_task_transition(task=task, to=ClearanceTask.State.REJECTED, kind=ClearanceEvent.Kind.REJECTED,
                                     actor=actor, reason=reason, data={"next_step": next_step}, at=at,
                                     decided_at=at, decided_by=actor, decision_reason=reason)
    popup = PopupCase.objects.filter(pk=task.popup_id).first()
    if popup is not None and popup.state == PopupCase.State.UNDER_REVIEW:
        popup_reject_review(case=popup, actor=actor, reason=reason)
    _close_appeal(task, actor=actor, reason=reason, outcome="rejected")
    _notify(task=task, purpose="clearance_rejected", key="decision", compose=lambda: _(
        "Your community %(community)s could not accept your return yet. Reason: %(reason)s. Next step: %(next)s.") % {
        # the message supplies the full stop in the resident's language, whatever the worker typed
        "community": task.community.name, "reason": reason.rstrip(".。!！ "),
        "next": ClearanceTask.NextStep(next_step).label})
    return task


@transaction.atomic
def clearance_request_info(*, task: ClearanceTask, actor: User, question: str,
                           at: dt.datetime | None = None) -> ClearanceTask:
    """Ask the resident for more information: a fresh one-time link with the question."""
    at = at or clock.now()
    question = _require_reason(question)
    task = clearance_task_transition(task=task, to=ClearanceTask.State.INFO_REQUESTED,
                                     kind=ClearanceEvent.Kind.INFO_REQUESTED, actor=actor, reason=question, at=at)
    clearance_link_issue(task=task, question=question, at=at)
    return task


@transaction.atomic
def clearance_link_resend(*, task: ClearanceTask, actor: User, at: dt.datetime | None = None) -> ClearanceLink:
    """Send the resident a fresh link (the earlier unused one stops working), e.g. after it
    expired or the resident lost the SMS. Refused on a closed task."""
    at = at or clock.now()
    task = ClearanceTask.objects.select_for_update(of=("self",)).select_related("community", "resident", "appeal").get(
        pk=task.pk)
    check_not_closed(task)
    purpose = (ClearanceLink.Purpose.COMMITMENT
               if task.state == ClearanceTask.State.MEASURES and task.commitment_required
               and task.commitment_signed_at is None else ClearanceLink.Purpose.CONFIRM)
    from appeals.clearance.selectors import task_open_question

    link, _token = clearance_link_issue(task=task, purpose=purpose, question=task_open_question(task), at=at)
    _event(task=task, kind=ClearanceEvent.Kind.NOTE, actor=actor, reason=_("Link sent again."), at=at)
    return link


@transaction.atomic
def clearance_call_log(*, task: ClearanceTask, actor: User, direction: str, outcome: str, note: str = "",
                       at: dt.datetime | None = None) -> ClearanceEvent:
    """Record a call between the worker and the resident (the task's call log)."""
    if direction not in dict(CALL_DIRECTIONS) or outcome not in dict(CALL_OUTCOMES):
        raise ApplicationError(_("Please choose the call direction and outcome."))
    return _event(task=task, kind=ClearanceEvent.Kind.CALL, actor=actor, reason=note,
                  data={"direction": direction, "outcome": outcome}, at=at)


@transaction.atomic
def clearance_reveal(*, task: ClearanceTask, actor: User, reason: str) -> dict[str, object]:
    """The resident's name, ID number and phones in clear, for a worker whose scope includes the
    task's community: logged in the registry's access log and in the task history first."""
    from communities.models import PersonalDataAccess
    from communities.services import access_log

    reason = _require_reason(reason)
    access_log(actor=actor, resident=task.resident, action=PersonalDataAccess.Action.REVEAL_ID,
               context=f"clearance:{task.pk}", reason=reason)
    _event(task=task, kind=ClearanceEvent.Kind.REVEAL, actor=actor, reason=reason)
    resident = task.resident
    phones = [p.reveal_phone() for p in resident.phones.all()]
    if task.contact_phone_encrypted:
        phones.append(pii.decrypt(task.contact_phone_encrypted))
    return {"name": resident.name, "id_number": resident.reveal_id_number(), "phones": list(dict.fromkeys(phones))}


# --- investigations and measures --------------------------------------------------------------


def _day_start(start: dt.datetime, day: int) -> dt.datetime:
    """Local midnight of day `day` counted from `start` (day 1 is the day of `start`)."""
    local = timezone.localtime(start)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=day - 1)
    return midnight if day > 1 else start


def _require_tests(*, task: ClearanceTask, kind: str, start: dt.datetime, days: list[int], reason: str) -> dt.datetime:
    """One TestRequirement per test day (engine raises popup 4 when a day is missed). Returns the
    trigger of the last day (lifting needs a negative result sampled after it)."""
    grace = dt.timedelta(hours=settings.CLEARANCE_TEST_GRACE_HOURS)
    last = start
    for day in days:
        trigger = _day_start(start, day)
        end_of_day = _day_start(start, day + 1)
        test_requirement_create(
            resident=task.resident, kind=kind, trigger_at=trigger, deadline_at=end_of_day + grace,
            reason=_("%(reason)s, test of day %(day)s") % {"reason": reason, "day": day},
            source_ref=f"clearance:{task.pk}:day{day}",
        )
        last = max(last, trigger)
    return last


def _policy_params(task: ClearanceTask) -> dict[str, Any]:
    policy = task.popup.policy if task.popup_id and task.popup.policy_id else None
    return dict(policy.params) if policy else {}


@transaction.atomic
def clearance_investigate(*, task: ClearanceTask, actor: User, outcome: str, reason: str,
                          at: dt.datetime | None = None) -> ClearanceTask:
    """Record a type-3 investigation and start its measures (task state "measures"):

    high risk → red order (centralised observation) for `central_days`, negative test at the end;
    medium → yellow order (home observation) for `home_days` with the policy's test days;
    listed area → tests on the policy's days (1, 2, 4, 7), each tracked by the engine (type 4 if missed);
    nothing found → commitment letter (SMS link) and one negative test within 72 h.
    The popup is lifted by `clearance_measures_complete` once what the outcome asks for is on record.
    """
    at = at or clock.now()
    reason = _require_reason(reason)
    if outcome not in ClearanceTask.Outcome.values:
        raise ApplicationError(_("Please choose the investigation outcome."))
    locked = (ClearanceTask.objects.select_for_update(of=("self",))
              .select_related("popup__policy", "appeal", "community", "resident").get(pk=task.pk))
    if locked.popup_id is None:
        # An appeal never linked to its popup: investigate the popup 3 it reports, if it is on record.
        from appeals.clearance.selectors import task_claimed_popup

        claimed = task_claimed_popup(locked)
        if claimed is not None and claimed.popup_type == 3:
            _link_popup(task=locked, popup=claimed, actor=actor, actor_label="", at=at)
    if locked.popup_id is None or locked.popup.popup_type != 3:
        raise ApplicationError(_("Only a popup 3 (risk link) is investigated."))
    with translation.override(settings.LANGUAGE_CODE):  # order/test reasons and SMS are read by residents
        return _investigate(task=locked, actor=actor, outcome=outcome, reason=reason, at=at)


def _investigate(*, task: ClearanceTask, actor: User, outcome: str, reason: str, at: dt.datetime) -> ClearanceTask:
    """The body of clearance_investigate (task already locked), run in the residents' language."""
    locked = task
    params = _policy_params(locked)
    test_days = [int(d) for d in params.get("test_days", [1, 2, 4, 7])]
    label = _("Risk investigation %(ref)s") % {"ref": locked.reference}
    fields: dict[str, Any] = {"outcome": outcome, "investigated_at": at}
    Outcome = ClearanceTask.Outcome
    if outcome == Outcome.HIGH_RISK:
        days = int(params.get("central_days", 7))
        ends = _day_start(at, days + 1)
        health_status_order_create(resident=locked.resident, status="red", starts_at=at, ends_at=ends,
                                   reason=_("Centralised observation after %(label)s") % {"label": label}, actor=actor)
        fields.update(measures_until=ends, negative_test_after=_day_start(at, days))
        measures = _("centralised observation until %(until)s") % {"until": _fmt(ends)}
    elif outcome == Outcome.MEDIUM_RISK:
        days = int(params.get("home_days", 7))
        ends = _day_start(at, days + 1)
        health_status_order_create(resident=locked.resident, status="yellow", starts_at=at, ends_at=ends,
                                   reason=_("Home observation after %(label)s") % {"label": label}, actor=actor)
        last = _require_tests(task=locked, kind="investigation", start=at, days=[d for d in test_days if d <= days],
                              reason=label)
        fields.update(measures_until=ends, negative_test_after=last)
        measures = _("home observation until %(until)s, nucleic-acid tests on days %(days)s") % {
            "until": _fmt(ends), "days": ", ".join(map(str, test_days))}
    elif outcome == Outcome.LISTED_AREA:
        last = _require_tests(task=locked, kind="investigation", start=at, days=test_days, reason=label)
        fields.update(measures_until=_day_start(at, max(test_days) + 1), negative_test_after=last)
        measures = _("nucleic-acid tests on days %(days)s") % {"days": ", ".join(map(str, test_days))}
    else:
        deadline = at + dt.timedelta(hours=72)
        test_requirement_create(resident=locked.resident, kind="investigation", trigger_at=at, deadline_at=deadline,
                                reason=label, source_ref=f"clearance:{locked.pk}:negative")
        fields.update(measures_until=None, negative_test_after=at, commitment_required=True)
        measures = _("sign the commitment letter and take one nucleic-acid test by %(until)s") % {
            "until": _fmt(deadline)}
    task = clearance_task_transition(task=locked, to=ClearanceTask.State.MEASURES,
                                     kind=ClearanceEvent.Kind.INVESTIGATED, actor=actor, reason=reason,
                                     data={"outcome": outcome, "measures": str(measures)}, at=at, **fields)
    _start_review(task, at)
    _notify(task=task, purpose="clearance_measures", key="measures", compose=lambda: _(
        "Your community %(community)s finished its risk investigation. What you need to do: "
        "%(measures)s. Your popup is lifted when this is done.") % {
        "community": task.community.name, "measures": measures})
    if task.commitment_required and task.commitment_signed_at is None:
        clearance_link_issue(task=task, purpose=ClearanceLink.Purpose.COMMITMENT, at=at)
    return task


def _fmt(instant: dt.datetime) -> str:
    return timezone.localtime(instant).strftime("%Y-%m-%d %H:%M")


@transaction.atomic
def clearance_checkpoint_preapprove(*, actor: User, resident: Resident, community: Community,
                                    popup: PopupCase | None, measure: str, reason: str,
                                    at: dt.datetime | None = None) -> ClearanceTask:
    """The self-drive route: a worker accepts, by phone from the checkpoint, a resident returning
    by car. The resident signs the commitment letter through an SMS link and then takes the
    follow-up tests ("three days, two tests": days 1 and 3), or home observation (yellow, 7 days)
    with tests on days 1, 3 and 7. Lifted like an investigation once everything is on record.
    """
    at = at or clock.now()
    reason = _require_reason(reason)
    if measure not in ("three_days_two_tests", "home_observation"):
        raise ApplicationError(_("Please choose the follow-up for the resident."))
    task, _created = clearance_task_open(resident=resident, community=community, origin=ClearanceTask.Origin.CHECKPOINT,
                                         popup=popup, actor=actor, reason=reason, send_link=False, at=at)
    days = [1, 3] if measure == "three_days_two_tests" else [1, 3, 7]
    until = _day_start(at, max(days) + 1)
    with translation.override(settings.LANGUAGE_CODE):  # test and order reasons are read by residents
        label = _("Checkpoint return %(ref)s") % {"ref": task.reference}
        last = _require_tests(task=task, kind="checkpoint", start=at, days=days, reason=label)
        if measure == "home_observation":
            health_status_order_create(resident=resident, status="yellow", starts_at=at, ends_at=until,
                                       reason=_("Home observation after %(label)s") % {"label": label}, actor=actor)
    task = clearance_task_transition(
        task=task, to=ClearanceTask.State.MEASURES, kind=ClearanceEvent.Kind.INVESTIGATED, actor=actor, reason=reason,
        data={"checkpoint": measure, "test_days": days}, at=at, allow_same=True, commitment_required=True,
        investigated_at=at, measures_until=until, negative_test_after=last,
    )
    _start_review(task, at)
    _notify(task=task, purpose="clearance_checkpoint", key="checkpoint", compose=lambda: _(
        "Your community %(community)s accepted your return by car. Sign the commitment letter "
        "through the next SMS and take nucleic-acid tests on days %(days)s.") % {
        "community": community.name, "days": ", ".join(map(str, days))})
    if task.commitment_signed_at is None:
        clearance_link_issue(task=task, purpose=ClearanceLink.Purpose.COMMITMENT, at=at)
    return task


def clearance_measures_complete(*, task: ClearanceTask, at: dt.datetime | None = None) -> bool:
    """Lift a task in "measures" once its measures are on record: commitment signed (if asked),
    measures period over, and a negative result sampled at/after `negative_test_after` received.
    Returns whether it lifted. Safe to call any time (the sweep and the resident's submission do)."""
    from appeals.clearance.selectors import tasks_measures_done

    at = at or clock.now()
    with transaction.atomic():
        # Re-checked under the task's lock: the sweep and a resident's submission may race.
        if not tasks_measures_done(at=at).select_for_update(of=("self",)).filter(pk=task.pk).exists():
            return False
        clearance_accept(task=task, actor=None, actor_label="clearance", at=at,
                         reason=_("Measures completed: commitment and negative test on record."))
    return True


# --- set-based jobs (beat) --------------------------------------------------------------------

_OPEN = list(OPEN_TASK_STATES)
# The SLA measures the community's response; a task in "measures" has had it.
_SLA_STATES = [s for s in OPEN_TASK_STATES if s != "measures"]

# Raw INSERTs name every NOT NULL column of clearance_clearancetask: Django sets no database defaults.
_SWEEP_SQL = """
WITH candidates AS (
    SELECT p.id AS popup_id, p.resident_id, coalesce(r.community_id, v.community_id) AS community_id,
           v.id AS venue_id, v.code AS venue_code,
           CASE WHEN p.popup_type = 3 THEN 'risk_link'
                WHEN p.source = 'upstream' THEN 'misattribution'
                ELSE 'in_city' END AS origin,
           coalesce((pol.params ->> 'commitment_letter')::boolean, false) AS letter
    FROM healthkit_popupcase p
    JOIN communities_resident r ON r.id = p.resident_id
    LEFT JOIN healthkit_popuppolicy pol ON pol.id = p.policy_id
    -- A resident registered without a community (by scan ingest or online filing): a venue
    -- exposure's popup goes to the community of the venue its cause names (docs/venues.md).
    LEFT JOIN venues_venue v ON r.community_id IS NULL
         AND v.id = CASE WHEN p.cause ->> 'rule' = 'venue_risk' THEN (p.cause ->> 'venue')::bigint END
    WHERE p.state IN ('active', 'under_review') AND coalesce(r.community_id, v.community_id) IS NOT NULL
      AND (p.popup_type = 3
           OR (p.popup_type = 1 AND p.source = 'upstream')
           -- type 1 of a resident already back: arrived after the start of their latest stay
           -- outside, and no stay still open.
           OR (p.popup_type = 1
               AND NOT EXISTS (SELECT 1 FROM healthkit_stay s WHERE s.resident_id = p.resident_id
                               AND s.ended_at IS NULL)
               AND EXISTS (SELECT 1 FROM healthkit_arrival a WHERE a.resident_id = p.resident_id
                           AND a.arrived_at >= (SELECT max(s.started_at) FROM healthkit_stay s
                                                WHERE s.resident_id = p.resident_id))))
      -- once per popup: a rejected task is not reopened by the sweep (the resident re-applies)
      AND NOT EXISTS (SELECT 1 FROM clearance_clearancetask t WHERE t.popup_id = p.id)
    ORDER BY p.raised_at, p.id
    LIMIT %(limit)s
), inserted AS (
    INSERT INTO clearance_clearancetask (
        resident_id, community_id, popup_id, appeal_id, origin, state, priority, sla_due_at,
        outside_since, wishes_to_return, confirmation, contact_phone_encrypted, contact_phone_masked,
        commitment_required, commitment_digest, outcome, decision_reason, created_at, updated_at)
    SELECT resident_id, community_id, popup_id, NULL, origin, 'open', 3, %(due)s, NULL, false, '{}'::jsonb,
           '', '', letter, '', '', '', %(now)s, %(now)s
    FROM candidates
    ON CONFLICT DO NOTHING
    RETURNING id, origin, popup_id
), events AS (
    INSERT INTO clearance_clearanceevent (task_id, kind, from_state, to_state, actor_label, reason, data, at)
    SELECT i.id, 'opened', '', 'open', 'clearance-sweep',
           CASE WHEN c.venue_id IS NULL THEN '' ELSE %(why_venue)s END,
           jsonb_build_object('origin', i.origin, 'popup', i.popup_id)
           || CASE WHEN c.venue_id IS NULL THEN '{}'::jsonb
                   ELSE jsonb_build_object('community_from', 'venue', 'venue', c.venue_id,
                                           'venue_code', c.venue_code) END,
           %(now)s
    FROM inserted i JOIN candidates c ON c.popup_id = i.popup_id
    RETURNING 1
)
SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM inserted
"""


def _try_job_lock(cursor, job: str) -> bool:
    """One run of a beat job at a time (transaction-scoped advisory lock; a late run skips)."""
    cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [f"clearance:{job}"])
    return bool(cursor.fetchone()[0])


def clearance_popup_sweep(*, at: dt.datetime | None = None, limit: int = 5000) -> list[int]:
    """Open a task for every open popup that needs the community (type 3; type 1 assigned
    upstream, i.e. a possible misattribution; type 1 of a resident already back in the city),
    once per popup, in one statement. The task goes to the resident's community; a resident
    with none (registered by scan ingest or online filing) has a venue exposure's popup go to
    the venue's community, the task's "opened" event saying so; other popups of such a resident
    wait until they have a community (no other source names one). The resident's link SMS is
    sent per new task on commit. Returns the new task ids (at most `limit` per run; the next
    run takes the rest)."""
    from appeals.clearance.tasks import clearance_send_link

    at = at or clock.now()
    with transaction.atomic(), connection.cursor() as cursor:
        if not _try_job_lock(cursor, "popup-sweep"):
            return []  # a previous run is still going: it takes these popups
        cursor.execute(_SWEEP_SQL, {
            "now": at, "limit": limit, "due": at + dt.timedelta(hours=settings.CLEARANCE_SLA_HOURS),
            "why_venue": _("The resident has no registered community: this task went to the community of "
                           "the venue in the popup's cause, where the resident scanned during its risk window."),
        })
        ids = list(cursor.fetchone()[0])
        transaction.on_commit(lambda: [clearance_send_link.delay(pk) for pk in ids])
    return ids


_RELIEF_SQL = """
WITH wishes AS (
    SELECT DISTINCT ON (c.popup_id) c.popup_id, c.resident_id, c.community_id, c.appeal_id, c.outside_since
    FROM (
        SELECT a.popup_id, a.resident_id,
               coalesce(a.routed_community_id, a.community_id, r.community_id) AS community_id,
               a.id AS appeal_id, a.outside_since
        FROM appeals_appeal a JOIN communities_resident r ON r.id = a.resident_id
        WHERE a.status = ANY(%(appeal_open)s) AND a.merged_into_id IS NULL AND a.currently_outside_city
          AND a.wishes_to_return AND a.outside_since < %(cutoff)s AND a.popup_id IS NOT NULL
        UNION ALL
        SELECT t.popup_id, t.resident_id, t.community_id, NULL, t.outside_since
        FROM clearance_clearancetask t
        WHERE t.wishes_to_return AND t.outside_since < %(cutoff)s AND t.popup_id IS NOT NULL
    ) c
    JOIN healthkit_popupcase p ON p.id = c.popup_id AND p.state IN ('active', 'under_review')
    WHERE c.community_id IS NOT NULL
    ORDER BY c.popup_id, c.appeal_id NULLS LAST, c.outside_since
), raised AS (
    UPDATE clearance_clearancetask t
    SET priority = 2, sla_due_at = least(t.sla_due_at, %(due)s), updated_at = %(now)s
    FROM wishes w
    WHERE t.popup_id = w.popup_id AND t.state = ANY(%(open)s) AND t.priority > 2
    RETURNING t.id
), created AS (
    INSERT INTO clearance_clearancetask (
        resident_id, community_id, popup_id, appeal_id, origin, state, priority, sla_due_at,
        outside_since, wishes_to_return, confirmation, contact_phone_encrypted, contact_phone_masked,
        commitment_required, commitment_digest, outcome, decision_reason, created_at, updated_at)
    SELECT w.resident_id, w.community_id, w.popup_id, w.appeal_id, 'stranded', 'open', 2, %(due)s, w.outside_since,
           true, '{}'::jsonb, '', '', false, '', '', '', %(now)s, %(now)s
    FROM wishes w
    WHERE NOT EXISTS (SELECT 1 FROM clearance_clearancetask t WHERE t.popup_id = w.popup_id
                      AND t.state = ANY(%(open)s))
    ON CONFLICT DO NOTHING
    RETURNING id
), events AS (
    INSERT INTO clearance_clearanceevent (task_id, kind, from_state, to_state, actor_label, reason, data, at)
    SELECT id, 'prioritised', '', '', 'relief', %(why)s, jsonb_build_object('priority', 2), %(now)s FROM raised
    UNION ALL
    SELECT id, 'opened', '', 'open', 'relief', %(why)s, jsonb_build_object('origin', 'stranded'), %(now)s FROM created
    RETURNING 1
)
SELECT (SELECT count(*) FROM raised), (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM created)
"""


@dataclass(frozen=True)
class ReliefResult:
    prioritised: int
    created: list[int]


def clearance_relief_sweep(*, at: dt.datetime | None = None) -> ReliefResult:
    """Daily relief: residents outside the city for more than CLEARANCE_STRANDED_DAYS with an
    open popup and a wish to return (from an open appeal or their confirmation) become priority
    cases on their community's worklist: an open task is raised to "high", otherwise a new
    "stranded" task is opened (and the resident texted a link). Set-based; a rerun changes nothing."""
    from appeals.clearance.tasks import clearance_send_link

    at = at or clock.now()
    cutoff = timezone.localdate(at) - dt.timedelta(days=settings.CLEARANCE_STRANDED_DAYS)
    params = {
        "now": at, "cutoff": cutoff, "open": _OPEN, "appeal_open": [str(s) for s in Appeal.OPEN_STATUSES],
        "due": at + dt.timedelta(hours=settings.CLEARANCE_SLA_HOURS),
        "why": _("Outside the city for more than %(days)s days and wishes to return.") % {
            "days": settings.CLEARANCE_STRANDED_DAYS},
    }
    with transaction.atomic(), connection.cursor() as cursor:
        if not _try_job_lock(cursor, "relief-sweep"):
            return ReliefResult(prioritised=0, created=[])
        cursor.execute(_RELIEF_SQL, params)
        prioritised, created = cursor.fetchone()
        created = list(created)
        transaction.on_commit(lambda: [clearance_send_link.delay(pk) for pk in created])
    return ReliefResult(prioritised=prioritised, created=created)


_SLA_SQL = """
WITH breached AS (
    UPDATE clearance_clearancetask
    SET sla_breached_at = %(now)s, escalated_at = %(now)s, updated_at = %(now)s
    WHERE state = ANY(%(open)s) AND sla_breached_at IS NULL AND sla_due_at < %(now)s
    RETURNING id, sla_due_at
), events AS (
    INSERT INTO clearance_clearanceevent (task_id, kind, from_state, to_state, actor_label, reason, data, at)
    SELECT id, 'escalated', '', '', 'sla-sweep', '', jsonb_build_object('due', sla_due_at), %(now)s FROM breached
    RETURNING 1
)
SELECT count(*) FROM breached
"""


def clearance_sla_sweep(*, at: dt.datetime | None = None) -> int:
    """Mark tasks still awaiting the community's response (open, confirmed, information asked;
    not those in measures) past their SLA as breached and escalated, with one event each, in one
    statement, as appeals do. Returns the number marked."""
    at = at or clock.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SLA_SQL, {"now": at, "open": _SLA_STATES})
        return cursor.fetchone()[0]


_CLOSE_MOOT_SQL = """
WITH closed AS (
    UPDATE clearance_clearancetask t
    SET state = 'closed', closed_at = %(now)s, updated_at = %(now)s, decision_reason = %(why)s
    FROM healthkit_popupcase p
    WHERE p.id = t.popup_id AND p.state IN ('lifted', 'withdrawn') AND t.state = ANY(%(open)s)
    RETURNING t.id, t.state AS to_state, p.state AS popup_state
), events AS (
    INSERT INTO clearance_clearanceevent (task_id, kind, from_state, to_state, actor_label, reason, data, at)
    SELECT id, 'closed', '', 'closed', 'clearance-sweep', %(why)s, jsonb_build_object('popup', popup_state), %(now)s
    FROM closed
    RETURNING 1
)
SELECT count(*) FROM closed
"""


def clearance_measures_sweep(*, at: dt.datetime | None = None, limit: int = 500) -> int:
    """Lift tasks whose measures are complete (each through popup_lift, bounded per run), and
    close open tasks whose popup was lifted or withdrawn elsewhere (one statement)."""
    from appeals.clearance.selectors import tasks_measures_done

    at = at or clock.now()
    lifted = 0
    for task in tasks_measures_done(at=at).select_related("community", "resident", "appeal").order_by("id")[:limit]:
        lifted += clearance_measures_complete(task=task, at=at)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLOSE_MOOT_SQL, {"now": at, "open": _OPEN,
                                         "why": _("The popup was lifted or withdrawn by other means.")})
    return lifted


def clearance_send_first_link(*, task_id: int) -> ClearanceLink | None:
    """The first link of a task opened by a sweep (idempotent: a task that has a link gets none)."""
    with transaction.atomic():
        task = (ClearanceTask.objects.select_for_update(of=("self",)).select_related("community", "resident", "appeal")
                .filter(pk=task_id, state__in=ClearanceTask.OPEN_STATES).first())
        if task is None or task.links.exists():
            return None
        link, _token = clearance_link_issue(task=task)
        return link
