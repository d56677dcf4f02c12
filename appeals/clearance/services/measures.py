"""Type-3 investigations, the checkpoint (self-drive) route and the measures that lift a popup."""

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from appeals.clearance.models import (
    ClearanceEvent,
    ClearanceLink,
    ClearanceTask,
)
from appeals.clearance.services.common import (
    _day_start,
    _fmt,
    _notify,
    _require_reason,
    check_open_and_seen,
    clearance_task_transition,
    lock_task,
)
from appeals.clearance.services.decisions import _link_popup, clearance_accept
from appeals.clearance.services.links import (
    _start_review,
    clearance_link_issue,
    clearance_task_open,
)
from communities.models import Community, Resident, User
from healthkit import clock
from healthkit.errors import ApplicationError
from healthkit.models import PopupCase
from healthkit.services import (
    health_status_order_create,
    test_requirement_create,
)


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


def _days_with_dates(start: dt.datetime, days: list[int]) -> str:
    """"1 (12-01), 2 (12-02), 4 (12-04)": the resident reads the real dates, not only day numbers."""
    return ", ".join(f"{day} ({timezone.localtime(_day_start(start, day)):%m-%d})" for day in days)


def _policy_params(task: ClearanceTask) -> dict[str, Any]:
    policy = task.popup.policy if task.popup_id and task.popup.policy_id else None
    return dict(policy.params) if policy else {}


@transaction.atomic
def clearance_investigate(*, task: ClearanceTask, actor: User, outcome: str, reason: str,
                          confirm_high_risk: bool = False, at: dt.datetime | None = None,
                          seen: str | None = None) -> ClearanceTask:
    """Record a type-3 investigation and start its measures (task state "measures"):

    high risk → red order (centralised observation) for `central_days`, negative test at the end;
    medium → yellow order (home observation) for `home_days` with the policy's test days;
    listed area → tests on the policy's days (1, 2, 4, 7), each tracked by the engine (type 4 if missed);
    nothing found → commitment letter (SMS link) and one negative test within 72 h.
    The popup is lifted by `clearance_measures_complete` once what the outcome asks for is on record.
    A high-risk outcome sends a person to centralised quarantine: it needs `confirm_high_risk`
    on every channel (console form, REST), so a slip of the hand cannot order it.
    """
    at = at or clock.now()
    reason = _require_reason(reason)
    if outcome not in ClearanceTask.Outcome.values:
        raise ApplicationError(_("Please choose the investigation outcome."))
    if outcome == ClearanceTask.Outcome.HIGH_RISK and not confirm_high_risk:
        raise ApplicationError(_("A high-risk outcome sends the resident to centralised quarantine: "
                                 "confirm it (tick the box)."), extra={"field": "confirm_high_risk"})
    locked = lock_task(task.pk, "popup__policy", "appeal", "community", "resident")
    check_open_and_seen(locked, seen)  # closed: who closed it; stale or repeated form: nothing done
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
            "until": _fmt(ends), "days": _days_with_dates(at, [d for d in test_days if d <= days])}
    elif outcome == Outcome.LISTED_AREA:
        last = _require_tests(task=locked, kind="investigation", start=at, days=test_days, reason=label)
        fields.update(measures_until=_day_start(at, max(test_days) + 1), negative_test_after=last)
        measures = _("nucleic-acid tests on days %(days)s") % {"days": _days_with_dates(at, test_days)}
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
    def compose() -> str:
        return _("Your community %(community)s finished its risk investigation. What you need to do: "
                 "%(measures)s. Your popup is lifted when this is done.") % {
            "community": task.community.name, "measures": measures}

    if task.commitment_required and task.commitment_signed_at is None:  # one SMS: the news and the link
        clearance_link_issue(task=task, purpose=ClearanceLink.Purpose.COMMITMENT, at=at, lead=compose)
    else:
        _notify(task=task, purpose="clearance_measures", key="measures", compose=compose, at=at)
    return task


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
    def compose() -> str:
        # The task's community: an open task found for the popup may be another community's than
        # the one selected in the form, and one SMS names one community throughout.
        return _("Your community %(community)s accepted your return by car. Take nucleic-acid tests on "
                 "days %(days)s.") % {"community": task.community.name, "days": _days_with_dates(at, days)}

    # The resident is at the checkpoint now: sent at once, with the letter's link in the same SMS.
    if task.commitment_signed_at is None:
        clearance_link_issue(task=task, purpose=ClearanceLink.Purpose.COMMITMENT, at=at, lead=compose, urgent=True)
    else:
        _notify(task=task, purpose="clearance_checkpoint", key="checkpoint", compose=compose, urgent=True, at=at)
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
