"""The one place where a change to an appeal reaches the community's open task for it.

The hotline owns the appeal and the community its task; whatever the hotline (or the resident)
does to the appeal, `clearance_follow_appeal` brings the task along in the same transaction, so
the two are never out of step: not between a re-route and a queued job, not while the resident
is asked for evidence, not after a popup is linked, a priority raised or the appeal closed.
"""

import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from appeals.clearance.models import ClearanceEvent, ClearanceLink, ClearanceTask
from appeals.clearance.services.common import (
    _event,
    clearance_task_transition,
    lock_task,
    sla_hours_for,
)
from appeals.clearance.services.decisions import clearance_withdraw_for_appeal
from appeals.clearance.services.links import _join, _start_review
from appeals.models import Appeal, AppealEvent
from communities.models import User
from healthkit import clock
from healthkit.errors import ApplicationError
from healthkit.models import PopupCase
from healthkit.services import popup_reject_review

# What happened to the appeal (the `change` of clearance_follow_appeal).
CLOSED = "closed"              # closed by the hotline, withdrawn by the resident
MERGED = "merged"              # merged into another appeal of the same resident (`into`)
ROUTED = "routed"              # sent (again) to a community
WAITING = "waiting"            # the hotline asked the resident for more evidence
EVIDENCE = "evidence"          # the resident sent it (through the link, or by filing again)
POPUP = "popup"                # linked to a popup (first time, or another one)
PRIORITY = "priority"          # its priority changed
CHANGES = (CLOSED, MERGED, ROUTED, WAITING, EVIDENCE, POPUP, PRIORITY)


def lock_appeal_tasks(appeal_ids: list[int], popup_ids: list[int] = ()) -> None:
    """Lock the appeals' open tasks (and the open tasks of `popup_ids`, which a popup link may
    join) before the appeals, in key order. A community decision locks its task and then closes
    the appeal; every hotline change takes them in the same order, so two people acting at once
    queue behind each other instead of deadlocking."""
    match = Q(appeal_id__in=appeal_ids)
    if popup_ids:
        match |= Q(popup_id__in=popup_ids)
    list(ClearanceTask.objects.select_for_update(of=("self",)).filter(match, state__in=ClearanceTask.OPEN_STATES)
         .order_by("pk").values_list("pk", flat=True))


def _open_task(appeal_id: int) -> ClearanceTask | None:
    pk = (ClearanceTask.objects.filter(appeal_id=appeal_id, state__in=ClearanceTask.OPEN_STATES)
          .order_by("pk").values_list("pk", flat=True).first())
    return lock_task(pk, "community", "popup", "resident") if pk is not None else None


@transaction.atomic
def clearance_follow_appeal(*, appeal: Appeal, change: str, actor: User | None, reason: str = "",
                            at: dt.datetime | None = None, strict: bool = True,
                            data: dict | None = None, into: Appeal | None = None) -> ClearanceTask | None:
    """Bring the appeal's open clearance task in step with `change`, just made to the (locked)
    appeal by an appeals service in the same transaction. Every change is a ClearanceEvent.

    * CLOSED: the task opened for the appeal and still awaiting the community is withdrawn; one
      held for the popup on its own or in measures goes on without the appeal (returned then).
    * MERGED (`appeal` the duplicate, closed, merged into `into`): when `into` has no open task,
      the duplicate's task is handed over to it with all the community did (history, calls,
      commitment letter, measures and tests, SLA clock): `appeal_merged` event; raised to the
      more urgent of the two; on hold if `into` waits for its resident's evidence, else any hold
      of the duplicate's ends (the due time moved by the time held). The caller then gives `into`
      to the task's community. When `into` has its own task, that one goes on and the
      duplicate's is ended as for CLOSED, its event naming the task and appeal merged into.
    * ROUTED: the task moves to the appeal's community now (not when a queued job runs), with
      the SLA clock of a new arrival (due, breach and escalation of the first community cleared)
      and any hold lifted; the first community's pages and API are refused from then on.
    * WAITING: the task is on hold while the resident is asked: flagged on the worklist, the
      task page and the ticket, its SLA clock stopped (the decisions stay open to the community).
    * EVIDENCE: the hold ends; the SLA due time moves by the time held (unless already breached).
      `data["unanswered"]`: the link ran out instead (appeal_unanswered_sweep), told apart in the event.
    * POPUP: the task works on the appeal's popup: an appeal task still awaiting takes it (the
      popup it had goes back to active if it put it under review); a task that holds its popup
      for its own sake (sweep, relief, checkpoint) or in measures goes on without the appeal;
      where another open task works on the popup, the appeal joins that one. `strict` (an
      operator's link): refused when that task already serves another appeal; a resident's
      filing (not strict) leaves the task as it is instead.
    * PRIORITY: a more urgent appeal raises the task (never lowers it: relief may have raised it).

    The caller locked the appeal's open tasks before the appeal (`lock_appeal_tasks`). Returns
    the task in step (for CLOSED, the task that goes on; for MERGED, the task handed over to
    `into`, or the duplicate's task that goes on without an appeal), else None.
    """
    if change not in CHANGES:
        raise ValueError(f"unknown change {change!r}")
    at = at or clock.now()
    if change == CLOSED:
        return clearance_withdraw_for_appeal(appeal_id=appeal.pk, reference=appeal.reference, actor=actor,
                                             reason=reason, outcome=appeal.outcome, at=at)
    if change == MERGED:
        if into is None:
            raise ValueError("a merge needs the appeal merged into")
        return _merge(appeal=appeal, into=into, actor=actor, at=at)
    task = _open_task(appeal.pk)
    if change == POPUP and appeal.popup_id:
        return _follow_popup(task=task, appeal=appeal, actor=actor, at=at, strict=strict)
    if task is None:
        return None
    if change == ROUTED:
        return _move(task=task, appeal=appeal, actor=actor, reason=reason, at=at)
    if change == WAITING:
        return _hold(task=task, appeal=appeal, actor=actor, reason=reason, at=at, data=data or {})
    if change == EVIDENCE:
        return _resume(task=task, appeal=appeal, actor=actor, at=at, data=data or {})
    if change == PRIORITY:
        return _join(task=task, appeal=None, priority=min(int(appeal.priority), ClearanceTask.Priority.NORMAL),
                     actor=actor, at=at)
    return task


def _actor_label(actor: User | None) -> str:
    return "" if actor else "hotline"


def _move(*, task: ClearanceTask, appeal: Appeal, actor: User | None, reason: str, at: dt.datetime) -> ClearanceTask:
    community = appeal.routed_community
    if community is None or community.pk == task.community_id:
        return _resume(task=task, appeal=appeal, actor=actor, at=at, data={}) if task.on_hold_since else task
    data = {"appeal": appeal.pk, "reference": appeal.reference, "from": task.community_id,
            "from_name": task.community.name, "to": community.pk, "to_name": community.name,
            "sla_due_at": task.sla_due_at.isoformat() if task.sla_due_at else None,
            "sla_breached_at": task.sla_breached_at.isoformat() if task.sla_breached_at else None,
            "on_hold_since": task.on_hold_since.isoformat() if task.on_hold_since else None}
    task.community = community
    # A new community's clock starts when the task reaches it; the first one's breach and
    # escalation were the first one's (kept in this event, not on the new worklist).
    task.sla_due_at = at + dt.timedelta(hours=sla_hours_for(task.priority))
    task.sla_breached_at = task.escalated_at = task.on_hold_since = None
    task.save(update_fields=["community", "sla_due_at", "sla_breached_at", "escalated_at", "on_hold_since",
                             "updated_at"])
    _event(task=task, kind=ClearanceEvent.Kind.REROUTED, actor=actor, actor_label=_actor_label(actor), at=at,
           reason=reason or _("Appeal %(ref)s re-routed by the hotline.") % {"ref": appeal.reference}, data=data)
    from appeals import notices

    if notices.filer_confirmed(appeal):  # a filer not confirmed was told by appeal_route itself
        notices.notify_routed(appeal, community)
    return task


def _merge(*, appeal: Appeal, into: Appeal, actor: User | None, at: dt.datetime) -> ClearanceTask | None:
    """The duplicate `appeal` is merged into `into` (both appeals and their open tasks locked)."""
    kept = _open_task(into.pk)
    data = {"into": into.pk, "into_reference": into.reference}
    if kept is not None:
        # the surviving appeal's own task goes on; the duplicate's ends as on any close, saying where
        data |= {"into_task": kept.pk, "into_task_reference": kept.reference}
        return clearance_withdraw_for_appeal(
            appeal_id=appeal.pk, reference=appeal.reference, actor=actor, outcome=appeal.outcome, at=at, data=data,
            reason=_("Appeal %(ref)s was merged into appeal %(into)s, whose community task %(task)s goes on.")
            % {"ref": appeal.reference, "into": into.reference, "task": kept.reference})
    task = _open_task(appeal.pk)
    if task is None:
        return None
    data |= {"appeal": appeal.pk, "reference": appeal.reference}
    fields = ["appeal", "wishes_to_return", "outside_since", "updated_at"]
    if task.on_hold_since is not None:
        # the hold was the duplicate's evidence request, closed with it; the time held did not
        # run against the community (as when the evidence arrives)
        held = at - task.on_hold_since
        data["held_minutes"] = int(held.total_seconds() // 60)
        if task.sla_due_at is not None and task.sla_breached_at is None and task.is_awaiting:
            task.sla_due_at += held
            fields.append("sla_due_at")
        task.on_hold_since = None
        fields.append("on_hold_since")
    task.appeal = into
    task.wishes_to_return = task.wishes_to_return or into.wishes_to_return
    task.outside_since = task.outside_since or into.outside_since
    task.save(update_fields=fields)
    _event(task=task, kind=ClearanceEvent.Kind.APPEAL_MERGED, actor=actor, actor_label=_actor_label(actor), at=at,
           reason=_("Appeal %(ref)s was merged into appeal %(into)s; this task goes on for %(into)s.")
           % {"ref": appeal.reference, "into": into.reference}, data=data)
    # the more urgent of the two (never lowered: the duplicate or relief may have raised the task)
    task = _join(task=task, appeal=None, priority=min(int(into.priority), ClearanceTask.Priority.NORMAL),
                 actor=actor, at=at)
    if into.status == Appeal.Status.WAITING_RESIDENT:
        # the hotline waits for this appeal's resident: the task waits with it, as the request
        # would have made it (the task page shows who asked, what and until when)
        asked = (AppealEvent.objects.filter(appeal=into, kind=AppealEvent.Kind.EVIDENCE_REQUESTED)
                 .order_by("-at", "-id").first())
        request = {k: v for k, v in (asked.data if asked else {}).items() if k in ("link", "expires_at")}
        _hold(task=task, appeal=into, actor=asked.actor if asked else actor, reason=asked.note if asked else "",
              at=at, data={**request, "merged_from": appeal.reference})
    return task


def _hold(*, task: ClearanceTask, appeal: Appeal, actor: User | None, reason: str, at: dt.datetime,
          data: dict) -> ClearanceTask:
    first = task.on_hold_since is None
    if first:
        task.on_hold_since = at
        task.save(update_fields=["on_hold_since", "updated_at"])
    _event(task=task, kind=ClearanceEvent.Kind.ON_HOLD, actor=actor, actor_label=_actor_label(actor), at=at,
           reason=reason, data={"appeal": appeal.pk, "reference": appeal.reference, "again": not first, **data})
    return task


def _resume(*, task: ClearanceTask, appeal: Appeal, actor: User | None, at: dt.datetime, data: dict) -> ClearanceTask:
    if task.on_hold_since is None:
        return task
    held = at - task.on_hold_since
    fields = ["on_hold_since", "updated_at"]
    if task.sla_due_at is not None and task.sla_breached_at is None and task.is_awaiting:
        task.sla_due_at += held  # the time the resident was asked did not run against the community
        fields.append("sla_due_at")
    task.on_hold_since = None
    task.save(update_fields=fields)
    unanswered = bool(data.get("unanswered"))
    kind = ClearanceEvent.Kind.RESUMED_UNANSWERED if unanswered else ClearanceEvent.Kind.RESUMED
    label = "" if actor else ("unanswered-sweep" if unanswered else "resident")
    _event(task=task, kind=kind, actor=actor, actor_label=label, at=at,
           data={"appeal": appeal.pk, "reference": appeal.reference, "held_minutes": int(held.total_seconds() // 60),
                 "sla_due_at": task.sla_due_at.isoformat() if task.sla_due_at else None, **data})
    return task


def _follow_popup(*, task: ClearanceTask | None, appeal: Appeal, actor: User | None, at: dt.datetime,
                  strict: bool) -> ClearanceTask | None:
    popup = PopupCase.objects.get(pk=appeal.popup_id)
    if task is not None and task.popup_id == popup.pk:
        return task
    if task is None and appeal.status != Appeal.Status.ROUTED:
        return None  # no community works on it yet: routing opens (or joins) the popup's task
    # Another open task working on the popup (one open task per popup), locked before the popup.
    other_pk = (ClearanceTask.objects.filter(popup=popup, state__in=ClearanceTask.OPEN_STATES)
                .exclude(pk=task.pk if task is not None else None).order_by("pk").values_list("pk", flat=True).first())
    other = lock_task(other_pk, "appeal") if other_pk is not None else None
    if other is not None and other.appeal_id not in (None, appeal.pk):
        if not strict:
            return task
        raise ApplicationError(
            _("Popup %(n)d is already being handled by community task %(task)s for appeal %(ref)s. Merge this "
              "appeal into %(ref)s instead.") % {"n": popup.popup_type, "task": other.reference,
                                                 "ref": other.appeal.reference},
            extra={"task": other.pk, "appeal": other.appeal.reference})
    label = _actor_label(actor)
    why = _("Appeal %(ref)s was linked to popup %(n)d.") % {"ref": appeal.reference, "n": popup.popup_type}
    if task is not None and other is None and (task.popup_id is None or (
            task.origin == ClearanceTask.Origin.APPEAL and task.is_awaiting)):
        return _retarget(task=task, popup=popup, actor=actor, label=label, why=why, at=at)
    if task is not None:  # this task goes on for its own popup, or gives way to the popup's task
        _let_go(task=task, appeal=appeal, popup=popup, other=other, actor=actor, label=label, why=why, at=at)
    if other is not None:
        _join(task=other, appeal=appeal, priority=min(int(appeal.priority), ClearanceTask.Priority.NORMAL),
              actor=actor, at=at)
        # with the appeal, the task goes to the community the hotline sent it to
        return _move(task=other, appeal=appeal, actor=actor, reason="", at=at)
    # a task of its own, for its popup
    from appeals.clearance.tasks import clearance_open_for_appeal

    appeal_id = appeal.pk
    transaction.on_commit(lambda: clearance_open_for_appeal.delay(appeal_id), robust=True)
    return None


def _retarget(*, task: ClearanceTask, popup: PopupCase, actor: User | None, label: str, why: str,
              at: dt.datetime) -> ClearanceTask:
    """The appeal's own task, still awaiting the community, works on the newly linked popup."""
    previous = task.popup
    try:
        with transaction.atomic():
            ClearanceTask.objects.filter(pk=task.pk).update(popup=popup, updated_at=at)
    except IntegrityError:  # a sweep opened the popup's own task meanwhile
        raise ApplicationError(_("Please try again."), extra={"task": task.pk}) from None
    task.popup = popup
    _event(task=task, kind=ClearanceEvent.Kind.POPUP_LINKED, actor=actor, actor_label=label, at=at, reason=why,
           data={"popup": popup.pk, "popup_type": popup.popup_type, "from_popup": previous.pk if previous else None,
                 "appeal": task.appeal_id})
    if previous is not None:  # back to active only if this task had put it under review
        popup_reject_review(case=previous, actor=actor, reason=why)
    if task.confirmed_at is not None:  # the resident has confirmed their details: the new popup is reviewed
        _start_review(task, at)
    return task


def _let_go(*, task: ClearanceTask, appeal: Appeal, popup: PopupCase, other: ClearanceTask | None,
            actor: User | None, label: str, why: str, at: dt.datetime) -> None:
    """The appeal leaves this task: the task goes on for its own popup (sweep, relief, checkpoint,
    measures), or, opened for the appeal alone and still awaiting, is withdrawn in favour of the
    popup's task."""
    data = {"appeal": appeal.pk, "reference": appeal.reference, "popup": popup.pk,
            "to_task": other.pk if other else None}
    if task.origin == ClearanceTask.Origin.APPEAL and task.is_awaiting:
        clearance_task_transition(task=task, to=ClearanceTask.State.CLOSED, kind=ClearanceEvent.Kind.APPEAL_UNLINKED,
                                  actor=actor, actor_label=label, reason=why, data=data, at=at, decided_at=at,
                                  decided_by=actor, decision_reason=why)
        ClearanceLink.objects.filter(task=task, used_at__isnull=True, revoked_at__isnull=True).update(revoked_at=at)
        if task.popup is not None:
            popup_reject_review(case=task.popup, actor=actor, reason=why)
        return
    ClearanceTask.objects.filter(pk=task.pk).update(appeal=None, on_hold_since=None, updated_at=at)
    task.appeal, task.on_hold_since = None, None
    _event(task=task, kind=ClearanceEvent.Kind.APPEAL_UNLINKED, actor=actor, actor_label=label, reason=why,
           data=data, at=at)
