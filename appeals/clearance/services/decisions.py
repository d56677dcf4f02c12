"""The worker's decisions on a task: accept (lift), reject, ask, resend, call log, reveal."""

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from appeals.clearance.models import (
    CALL_DIRECTIONS,
    CALL_OUTCOMES,
    ClearanceEvent,
    ClearanceLink,
    ClearanceTask,
)
from appeals.clearance.services.common import (
    _event,
    _fmt,
    _notify,
    _require_reason,
    check_open_and_seen,
    check_still_in_scope,
    clearance_task_transition,
    lock_task,
)
from appeals.clearance.services.links import clearance_link_issue
from communities import pii
from communities.models import User
from healthkit import clock
from healthkit.concurrency import check_seen, touch
from healthkit.errors import ApplicationError
from healthkit.models import PopupCase
from healthkit.services import (
    popup_lift,
    popup_reject_review,
)


def _close_appeal(task: ClearanceTask, *, actor: User | None, reason: str, outcome: str) -> None:
    if task.appeal_id is None:
        return
    from appeals.notices import filer_confirmed
    from appeals.services import appeal_close

    # The community's decision SMS (with the appeal's reference) goes to the resident; a filer
    # not confirmed as the resident is told only that their appeal is closed.
    appeal_close(appeal=task.appeal, actor=actor, reason=reason[:200], outcome=outcome,
                 notify=not filer_confirmed(task.appeal))


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
                     at: dt.datetime | None = None, seen: str | None = None) -> ClearanceTask:
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
    task handles), IllegalTransition if the task is already decided, ChangedSinceSeen if it
    changed since a page showed version `seen`. Locks the task.
    """
    from appeals.clearance.selectors import task_accept_refusal, task_decision_popup

    at = at or clock.now()
    reason = _require_reason(reason)
    locked = lock_task(task.pk, "popup__policy", "appeal", "community", "resident")
    check_still_in_scope(locked, actor)
    check_open_and_seen(locked, seen)
    popup = task_decision_popup(locked)
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
    # Decided on the locked row: the engine may lift the popup while the worker decides.
    popup_lift(case=popup, actor=actor, actor_label=label, reason=reason, authority="community", only_open=True,
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
def clearance_withdraw_for_appeal(*, appeal_id: int, reference: str, actor: User | None, reason: str,
                                  outcome: str, at: dt.datetime | None = None,
                                  data: dict | None = None) -> ClearanceTask | None:
    """The hotline closes an appeal: end the community's open work for it in the same
    transaction, so that exactly one decision stands and the resident hears one outcome.

    * A task opened for this appeal and still awaiting the community (open, confirmed,
      information asked) is withdrawn: state "closed", a "withdrawn" event naming the operator,
      the appeal, the outcome and the reason; its unused links stop working; the popup it put
      under review is active again. A worker's later decision is refused, saying who withdrew it
      and why (`closed_task_message`), and the resident's link says it can no longer be used.
    * A task that exists for the popup on its own (opened by a sweep, relief or the checkpoint)
      or whose measures have started (orders and tests already given, and they lift the popup)
      goes on without the appeal: "appeal_closed" event; its later SMS carry the task's reference.
      Returned, so the appeal's closing SMS can say the community goes on.

    `data` is added to either event (a merge: the task of the appeal merged into).

    The caller (appeals.services.appeal_close, appeal_merge) locked the appeal's open tasks
    before the appeal, the order a community decision takes them in. Returns the task that goes
    on, else None.
    """
    at = at or clock.now()
    going_on = None
    tasks = (ClearanceTask.objects.select_for_update(of=("self",)).select_related("popup")
             .filter(appeal_id=appeal_id, state__in=ClearanceTask.OPEN_STATES).order_by("pk"))
    extra = data or {}
    for task in tasks:
        data = {"appeal": appeal_id, "reference": reference, "outcome": outcome, **extra}
        if task.origin == ClearanceTask.Origin.APPEAL and task.is_awaiting:
            clearance_task_transition(task=task, to=ClearanceTask.State.CLOSED, kind=ClearanceEvent.Kind.WITHDRAWN,
                                      actor=actor, actor_label="" if actor else "hotline", reason=reason,
                                      data=data, at=at, decided_at=at, decided_by=actor, decision_reason=reason)
            ClearanceLink.objects.filter(task=task, used_at__isnull=True, revoked_at__isnull=True).update(revoked_at=at)
            if task.popup is not None:  # back to active only if under review once locked
                popup_reject_review(case=task.popup, actor=actor,
                                    reason=_("The hotline closed appeal %(ref)s.") % {"ref": reference})
            continue
        # a hold was the appeal's (its evidence request): the task goes on without either
        ClearanceTask.objects.filter(pk=task.pk).update(appeal=None, on_hold_since=None, updated_at=at)
        task.appeal, task.on_hold_since = None, None
        _event(task=task, kind=ClearanceEvent.Kind.APPEAL_CLOSED, actor=actor,
               actor_label="" if actor else "hotline", reason=reason, data=data, at=at)
        going_on = task
    return going_on


@transaction.atomic
def clearance_reject(*, task: ClearanceTask, actor: User, reason: str, next_step: str,
                     at: dt.datetime | None = None, seen: str | None = None) -> ClearanceTask:
    """Reject with the next step the resident must take; the popup goes back to active, the
    appeal is closed with outcome "rejected", the resident gets an SMS saying what to do."""
    at = at or clock.now()
    reason = _require_reason(reason)
    if next_step not in ClearanceTask.NextStep.values:
        raise ApplicationError(_("Please choose the next step for the resident."))
    task = clearance_task_transition(task=task, to=ClearanceTask.State.REJECTED, kind=ClearanceEvent.Kind.REJECTED,
                                     actor=actor, reason=reason, data={"next_step": next_step}, at=at,
                                     seen=seen, decided_at=at, decided_by=actor, decision_reason=reason)
    popup = PopupCase.objects.filter(pk=task.popup_id).first()
    if popup is not None:  # back to active only if still under review once locked
        popup = popup_reject_review(case=popup, actor=actor, reason=reason)
        if not popup.is_open:
            # The engine (or a lab result) ended the popup while the worker decided, and the
            # resident is texted that: a rejection beside it would contradict it.
            raise ApplicationError(
                _("Popup %(n)d was %(state)s on %(when)s while you decided, and the resident has been told. "
                  "Your rejection was not recorded; the task closes by itself.")
                % {"n": popup.popup_type, "state": popup.get_state_display().lower(),
                   "when": _fmt(popup.lifted_at or at)},
                extra={"task": task.pk, "popup_state": popup.state})
    _close_appeal(task, actor=actor, reason=reason, outcome="rejected")
    _notify(task=task, purpose="clearance_rejected", key="decision", compose=lambda: _(
        "Your community %(community)s could not accept your return yet. Reason: %(reason)s. Next step: %(next)s.") % {
        # the message supplies the full stop in the resident's language, whatever the worker typed
        "community": task.community.name, "reason": reason.rstrip(".。!！ "),
        "next": ClearanceTask.NextStep(next_step).label})
    return task


@transaction.atomic
def clearance_request_info(*, task: ClearanceTask, actor: User, question: str,
                           at: dt.datetime | None = None, seen: str | None = None) -> ClearanceTask:
    """Ask the resident for more information: a fresh one-time link with the question."""
    at = at or clock.now()
    question = _require_reason(question)
    task = clearance_task_transition(task=task, to=ClearanceTask.State.INFO_REQUESTED,
                                     kind=ClearanceEvent.Kind.INFO_REQUESTED, actor=actor, reason=question, at=at,
                                     seen=seen)
    clearance_link_issue(task=task, question=question, at=at)
    return task


@transaction.atomic
def clearance_link_resend(*, task: ClearanceTask, actor: User, at: dt.datetime | None = None,
                          seen: str | None = None) -> ClearanceLink:
    """Send the resident a fresh link (the earlier unused one stops working), e.g. after it
    expired or the resident lost the SMS. Refused on a closed task, and (ChangedSinceSeen) when
    the task changed since a page showed version `seen`: a button pressed twice sends one SMS."""
    at = at or clock.now()
    task = lock_task(task.pk, "community", "resident", "appeal")
    check_open_and_seen(task, seen)
    touch(task)
    purpose = (ClearanceLink.Purpose.COMMITMENT
               if task.state == ClearanceTask.State.MEASURES and task.commitment_required
               and task.commitment_signed_at is None else ClearanceLink.Purpose.CONFIRM)
    from appeals.clearance.selectors import task_open_question

    link, _token = clearance_link_issue(task=task, purpose=purpose, question=task_open_question(task), at=at)
    _event(task=task, kind=ClearanceEvent.Kind.NOTE, actor=actor, reason=_("Link sent again."), at=at)
    return link


@transaction.atomic
def clearance_call_log(*, task: ClearanceTask, actor: User, direction: str, outcome: str, note: str = "",
                       at: dt.datetime | None = None, seen: str | None = None) -> ClearanceEvent:
    """Record a call between the worker and the resident (the task's call log). Locks the task
    and moves its version, so the same call form sent twice is logged once."""
    if direction not in dict(CALL_DIRECTIONS) or outcome not in dict(CALL_OUTCOMES):
        raise ApplicationError(_("Please choose the call direction and outcome."))
    task = ClearanceTask.objects.select_for_update(of=("self",)).get(pk=task.pk)
    check_seen(task, seen)
    touch(task)
    return _event(task=task, kind=ClearanceEvent.Kind.CALL, actor=actor, reason=note,
                  data={"direction": direction, "outcome": outcome}, at=at)


@transaction.atomic
def clearance_reveal(*, task: ClearanceTask, actor: User, reason: str) -> dict[str, object]:
    """The resident's name, ID number and phones in clear, for a worker whose scope includes the
    task's community: logged in the registry's access log and in the task history first."""
    from communities.services import resident_reveal_scoped

    reason = _require_reason(reason)
    contact = pii.decrypt(task.contact_phone_encrypted) if task.contact_phone_encrypted else ""
    revealed = resident_reveal_scoped(actor=actor, resident=task.resident, reason=reason,
                                      context=f"clearance:{task.pk}", extra_phones=(contact,))
    _event(task=task, kind=ClearanceEvent.Kind.REVEAL, actor=actor, reason=reason)
    return revealed


