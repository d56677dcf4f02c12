"""Reads of community clearance: scoping (a worker sees only their communities' tasks), the
worklist, link checks and the "measures done" query."""

import datetime as dt
from dataclasses import dataclass

from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, Exists, F, OuterRef, Q, QuerySet, When
from django.utils import timezone
from django.utils.translation import gettext as _

from appeals.clearance import tokens
from appeals.clearance.models import (
    CALL_DIRECTIONS,
    CALL_OUTCOMES,
    ClearanceEvent,
    ClearanceLink,
    ClearanceTask,
)
from appeals.models import AppealContact
from appeals.selectors import appeal_evidence
from communities.models import PersonalDataAccess, User
from communities.selectors import communities_visible_to
from communities.services import access_log
from healthkit import clock
from healthkit.labels import actor_name
from healthkit.models import HealthStatusOrder, PopupCase, SmsMessage, TestRequirement, TestResult
from healthkit.permissions import has_role

WORKER_ROLES = (User.Role.COMMUNITY_WORKER, User.Role.SUPERVISOR, User.Role.ADMINISTRATOR)


def tasks_visible_to(user: User) -> QuerySet[ClearanceTask]:
    """Tasks of the communities the user serves (supervisors and administrators: all)."""
    if not has_role(user, WORKER_ROLES):
        return ClearanceTask.objects.none()
    if user.is_superuser or user.sees_all_communities:
        return ClearanceTask.objects.all()
    # The communities as a list of keys (a worker serves a handful): an index condition on
    # clearance_community_seek_idx, where a subquery let the planner walk every task in order.
    return ClearanceTask.objects.filter(community__in=list(communities_visible_to(user).values_list("pk", flat=True)))


def task_get(*, user: User, task_id: int) -> ClearanceTask:
    """Fetch a task the user may see, or raise PermissionDenied (not 404: no enumeration hint).
    Not audited: for re-reading a task that task_access has just admitted (and audited)."""
    # The resident's registered community as the page names it (street and district with it).
    task = (tasks_visible_to(user).select_related("resident__community__street__district", "community",
                                                  "popup__policy", "appeal", "decided_by")
            .filter(pk=task_id).first())
    if task is None:
        raise PermissionDenied
    return task


def task_access(*, user: User, task_id: int, where: str) -> ClearanceTask:
    """task_get, written to the access audit (`where`: "console", "api", the action): the one door
    to a task's page and API, so a new view cannot forget the audit."""
    task = task_get(user=user, task_id=task_id)
    access_log(actor=user, resident_id=task.resident_id, action=PersonalDataAccess.Action.VIEW,
               context=f"task:{task.pk}/{where}")
    return task


@dataclass(frozen=True)
class WorklistFilters:
    state: str = ""          # one state, "open" (default: every open state) or "all"
    origin: str = ""
    priority: int | None = None
    community: int | None = None
    overdue: bool = False
    reference: str = ""
    district: int | None = None
    popup_type: int | None = None
    test_missing: bool = False


def worklist(*, user: User, filters: WorklistFilters | None = None) -> QuerySet[ClearanceTask]:
    """The worker's tasks by urgency: priority (emergencies first), then the SLA due time."""
    filters = filters or WorklistFilters()
    tasks = tasks_visible_to(user).select_related("resident", "community", "popup", "appeal")
    if filters.state in ("", "open"):
        tasks = tasks.filter(state__in=ClearanceTask.OPEN_STATES)
    elif filters.state != "all":
        tasks = tasks.filter(state=filters.state)
    if filters.origin:
        tasks = tasks.filter(origin=filters.origin)
    if filters.priority:
        tasks = tasks.filter(priority=filters.priority)
    if filters.community:
        tasks = tasks.filter(community_id=filters.community)
    if filters.overdue:  # a task on hold has its SLA clock stopped
        tasks = tasks.filter(sla_due_at__lt=clock.now(), state__in=ClearanceTask.AWAITING_STATES,
                             on_hold_since__isnull=True)
    tasks = tasks.annotate(test_missing=tasks_with_test_missing())
    if filters.test_missing:
        tasks = tasks.filter(state=ClearanceTask.State.MEASURES, test_missing=True)
    if filters.district:
        tasks = tasks.filter(community__street__district_id=filters.district)
    if filters.popup_type:
        tasks = tasks.filter(popup__popup_type=filters.popup_type)
    if filters.reference:
        wanted = filters.reference.strip().upper()
        digits = wanted.lstrip("C")
        # ASCII digits only: "²".isdigit() is true but int("²") fails. Anything else is the
        # appeal's reference, which the resident has and reads out on the phone.
        tasks = tasks.filter(pk=int(digits)) if digits.isascii() and digits.isdigit() else \
            tasks.filter(appeal__reference=wanted)
    return tasks.order_by("priority", F("sla_due_at").asc(nulls_last=True), "id")


def state_counts(*, user: User) -> dict[str, int]:
    rows = tasks_visible_to(user).values("state").annotate(n=Count("id")).order_by()
    counts = dict.fromkeys(ClearanceTask.State.values, 0)
    counts.update({row["state"]: row["n"] for row in rows})
    return counts


@dataclass(frozen=True)
class LinkStatus:
    reason: str                      # ok, invalid, expired, used, replaced, closed
    link: ClearanceLink | None = None

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


def link_status(token: str, *, at: dt.datetime | None = None) -> LinkStatus:
    """What a link token is worth now. A tampered token is refused before any database read."""
    at = at or clock.now()
    try:
        raw = tokens.signer().unsign(token)
    except signing.BadSignature:
        return LinkStatus("invalid")
    link = ClearanceLink.objects.select_related("task__community").filter(token_hash=tokens.token_hash(raw)).first()
    if link is None:
        return LinkStatus("invalid")
    if link.used_at is not None:
        return LinkStatus("used", link)
    if link.revoked_at is not None:
        return LinkStatus("replaced", link)
    if link.expires_at <= at:
        return LinkStatus("expired", link)
    if not link.task.is_open:
        return LinkStatus("closed", link)
    return LinkStatus("ok", link)


def tasks_measures_done(*, at: dt.datetime | None = None) -> QuerySet[ClearanceTask]:
    """Tasks in "measures" whose conditions for lifting are on record at `at` (one query)."""
    at = at or clock.now()
    negative = TestResult.objects.filter(
        resident=OuterRef("resident"), result=TestResult.Outcome.NEGATIVE,
        sampled_at__gte=OuterRef("negative_test_after"), received_at__lte=at,
    ).filter(Q(superseded_at__isnull=True) | Q(superseded_at__gt=at))  # not since corrected by the lab
    return (ClearanceTask.objects.filter(state=ClearanceTask.State.MEASURES, negative_test_after__isnull=False)
            .filter(Q(commitment_required=False) | Q(commitment_signed_at__isnull=False))
            .filter(Q(measures_until__isnull=True) | Q(measures_until__lte=at))
            .filter(Exists(negative)))


def task_claimed_popup(task: ClearanceTask) -> PopupCase | None:
    """For a task without a popup that still awaits the community's decision: the resident's
    one open popup of the type their appeal claims (appeals filed by phone or Open311, or "I
    have a popup you don't show", were never linked to one). None when the appeal names no
    type, or the resident has no such popup, or several (the decision cannot tell which)."""
    if task.popup_id or not task.is_awaiting or not task.appeal_id or not task.appeal.popup_type_claimed:
        return None
    found = list(PopupCase.objects.filter(resident=task.resident_id, popup_type=task.appeal.popup_type_claimed,
                                          state__in=PopupCase.OPEN_STATES)
                 .select_related("policy").order_by("id")[:2])
    return found[0] if len(found) == 1 else None


def task_decision_popup(task: ClearanceTask) -> PopupCase | None:
    """The popup a decision on the task is about: its own, else the one its appeal claims."""
    return task.popup if task.popup_id else task_claimed_popup(task)


def popup_other_task(*, popup: PopupCase, task: ClearanceTask) -> ClearanceTask | None:
    """Another open task already working on `popup` (one open task per popup)."""
    return (ClearanceTask.objects.filter(popup=popup, state__in=ClearanceTask.OPEN_STATES)
            .exclude(pk=task.pk).order_by("id").first())


def other_task_message(other: ClearanceTask) -> str:
    return _("The resident's popup is already being handled on task %(ref)s: decide it there.") % {
        "ref": other.reference}


def task_accept_refusal(*, task: ClearanceTask, popup: PopupCase | None, at: dt.datetime | None = None) -> str:
    """Why accepting the task (lifting `popup`, see task_decision_popup) would be refused, in
    words for the worker; "" when it may be accepted. The service refuses with this message and
    the task page shows it instead of the button.

    * a popup another open task works on: decide it there;
    * a popup type no community decision lifts under the policy in force (2, 4, 5);
    * popup 3 before its investigation's measures are complete (commitment letter, negative
      test, observation period: DOMAIN "nothing found → letter + negative test → lifted"; the
      other outcomes' measures) — including the checkpoint route's. The measures sweep lifts it
      when they are.
    """
    from healthkit.services import popup_lift_authorities

    if popup is None or not popup.is_open:
        return ""
    at = at or clock.now()
    if popup.pk != task.popup_id:
        other = popup_other_task(popup=popup, task=task)
        if other is not None:
            return other_task_message(other)
    allowed = popup_lift_authorities(popup.popup_type, at)
    if allowed is not None and "community" not in allowed:
        return _("Popup %(n)d is not lifted by a community decision: it lifts by itself when its rule no "
                 "longer holds (for popup 4, once a negative test result is on record).") % {"n": popup.popup_type}
    if popup.popup_type == 3 and not tasks_measures_done(at=at).filter(pk=task.pk).exists():
        if task.state == ClearanceTask.State.MEASURES:
            return _("The measures are not complete yet (commitment letter, a negative test after the "
                     "investigation, the observation period). The popup is lifted automatically once they "
                     "are on record.")
        return _("Popup 3 is lifted only through the risk investigation: record its outcome first. "
                 "\"Nothing found\" asks for the signed commitment letter and a negative test; the popup "
                 "is lifted once the measures of the outcome are on record.")
    return ""


def task_popups(task: ClearanceTask) -> list[PopupCase]:
    """The task's popup first, then the resident's other open popups (for the engine's 'why')."""
    popups = list(PopupCase.objects.filter(Q(pk=task.popup_id) | Q(resident=task.resident_id,
                                                                   state__in=PopupCase.OPEN_STATES))
                  .select_related("policy").order_by("-raised_at"))
    return sorted(popups, key=lambda p: p.pk != task.popup_id)


def task_open_question(task: ClearanceTask) -> str:
    """The worker's latest question while the task waits for the resident's answer, else ""."""
    if task.state != ClearanceTask.State.INFO_REQUESTED:
        return ""
    return (task.events.filter(kind=ClearanceEvent.Kind.INFO_REQUESTED).order_by("-at", "-id")
            .values_list("reason", flat=True).first() or "")


@dataclass(frozen=True)
class TaskHold:
    """Why a task is on hold: the hotline asked the resident for more evidence on its appeal."""
    since: dt.datetime
    by: str                      # who asked (the operator's label)
    message: str                 # what the resident was asked for
    reference: str               # the appeal's reference
    expires_at: dt.datetime | None   # until when the resident's link works


def task_hold(task: ClearanceTask) -> TaskHold | None:
    """The hold on a task (None when it is not on hold), for the task page, the ticket and the API."""
    if task.on_hold_since is None:
        return None
    event = task.events.filter(kind=ClearanceEvent.Kind.ON_HOLD).order_by("-at", "-id").first()
    data = event.data if event is not None else {}
    expires = data.get("expires_at")
    return TaskHold(since=task.on_hold_since, by=actor_name(event.actor_label) if event else "",
                    message=event.reason if event else "", reference=data.get("reference", ""),
                    expires_at=dt.datetime.fromisoformat(expires) if expires else None)


def appeal_task(appeal) -> ClearanceTask | None:
    """The community's task for an appeal as the hotline's ticket shows it: the open one, else the
    latest (withdrawn, decided)."""
    open_first = Case(When(state__in=ClearanceTask.OPEN_STATES, then=0), default=1)
    return (ClearanceTask.objects.filter(appeal=appeal).select_related("community")
            .order_by(open_first, "-id").first())


def task_community_reason(task: ClearanceTask, *, history: list[ClearanceEvent] | None = None) -> str:
    """Why the task is with its community when that is not the resident's registered one (the
    popup sweep's fallback to a risk venue's community), else "". `history`: the task's events
    as task_history gives them, when the caller has read them already."""
    if task.resident.community_id == task.community_id:
        return ""
    if history is not None:
        return next((e.reason for e in history if e.kind == ClearanceEvent.Kind.OPENED
                     and (e.data or {}).get("community_from") == "venue"), "")
    opened = (task.events.filter(kind=ClearanceEvent.Kind.OPENED, data__community_from="venue")
              .order_by("at", "id").values_list("reason", flat=True).first())
    return opened or ""


def task_history(task: ClearanceTask) -> QuerySet[ClearanceEvent]:
    return task.events.select_related("actor").order_by("at", "id")


def task_calls(task: ClearanceTask, *, history: list[ClearanceEvent] | None = None) -> list[dict]:
    """The call log: the hotline's calls on the appeal and the community's own calls, by time.
    `history`: the task's events as task_history gives them, when the caller has read them."""
    directions, outcomes = dict(CALL_DIRECTIONS), dict(CALL_OUTCOMES)
    own = ([e for e in history if e.kind == ClearanceEvent.Kind.CALL] if history is not None else
           task.events.filter(kind=ClearanceEvent.Kind.CALL).select_related("actor").order_by("at", "id"))
    calls = [
        {"at": e.at, "who": actor_name(e.actor_label) or (e.actor.get_username() if e.actor else ""),
         "direction": directions.get(e.data.get("direction"), ""),
         "outcome": outcomes.get(e.data.get("outcome"), e.data.get("outcome", "")), "note": e.reason,
         "source": _("Community")}
        for e in own
    ]
    if task.appeal_id:
        for c in AppealContact.objects.filter(appeal=task.appeal_id).select_related("operator").order_by("at", "id"):
            calls.append({"at": c.at, "who": c.operator.get_username(), "direction": c.get_direction_display(),
                          "outcome": c.get_outcome_display(), "note": c.note, "source": _("12345 hotline")})
    return sorted(calls, key=lambda c: c["at"])


def task_evidence(task: ClearanceTask) -> list:
    """The appeal's evidence (served by the appeals app's checked view)."""
    if not task.appeal_id:
        return []
    return list(appeal_evidence(task.appeal))


# What the resident may see of the community's work on their appeal (no calls, notes or reveals).
PUBLIC_EVENT_KINDS = (
    ClearanceEvent.Kind.OPENED, ClearanceEvent.Kind.LINK_SENT, ClearanceEvent.Kind.CONFIRMED,
    ClearanceEvent.Kind.COMMITMENT_SIGNED, ClearanceEvent.Kind.INFO_REQUESTED,
    ClearanceEvent.Kind.INVESTIGATED, ClearanceEvent.Kind.LIFTED, ClearanceEvent.Kind.ACCEPTED,
    ClearanceEvent.Kind.REJECTED,
    ClearanceEvent.Kind.CLOSED,
)


@dataclass(frozen=True)
class ResidentProgress:
    task: ClearanceTask
    events: list[ClearanceEvent]
    next_step: str = ""
    measures: "TaskMeasures | None" = None


def clearance_progress_for_appeal(appeal) -> ResidentProgress | None:
    """The community step of an appeal as the resident's status page shows it: the latest task
    and its resident-facing events (so the resident sees the process is moving, for free)."""
    task = (ClearanceTask.objects.filter(appeal=appeal).select_related("community")
            .order_by("-id").first())
    if task is None:
        return None
    events = list(task.events.filter(kind__in=PUBLIC_EVENT_KINDS).order_by("at", "id"))
    next_step = ""
    rejected = [e for e in events if e.kind == ClearanceEvent.Kind.REJECTED]
    if task.state == ClearanceTask.State.REJECTED and rejected:
        code = rejected[-1].data.get("next_step", "")
        next_step = str(ClearanceTask.NextStep(code).label) if code in ClearanceTask.NextStep.values else ""
    return ResidentProgress(task=task, events=events, next_step=next_step, measures=task_measures(task))


@dataclass(frozen=True)
class CommitmentRecord:
    """What the worker sees of the commitment letter: who signed (the resident: the typed name
    matched the record), when, through which link, the letter text's digest, and how many
    signatures were refused because the name did not match."""
    signed_at: dt.datetime | None
    signer: str
    link: ClearanceLink | None
    letter_version: str
    letter_sha256: str
    refused: int


def task_commitment(task: ClearanceTask, *, history: list[ClearanceEvent] | None = None) -> CommitmentRecord:
    """The commitment letter's record. `history`: the task's events as task_history gives them
    (oldest first), when the caller has read them already."""
    if history is not None:
        signed = next((e for e in reversed(history) if e.kind == ClearanceEvent.Kind.COMMITMENT_SIGNED), None)
        refused = sum(e.kind == ClearanceEvent.Kind.SIGNATURE_REFUSED for e in history)
    else:
        signed = task.events.filter(kind=ClearanceEvent.Kind.COMMITMENT_SIGNED).order_by("-at", "-id").first()
        refused = task.events.filter(kind=ClearanceEvent.Kind.SIGNATURE_REFUSED).count()
    if signed is None:
        return CommitmentRecord(None, "", None, "", "", refused)
    data = signed.data or {}
    link = ClearanceLink.objects.filter(pk=data.get("link"), task=task).first()
    return CommitmentRecord(signed.at, task.resident.masked, link, data.get("version", ""),
                            data.get("letter_sha256", ""), refused)


def task_messages(task: ClearanceTask) -> QuerySet[SmsMessage]:
    """The SMS sent to the resident for this task (links, decisions, measures), with their
    delivery state: did the resident get the link?"""
    return SmsMessage.objects.filter(idempotency_key__startswith=f"clearance:{task.pk}:").order_by("created_at")


# --- the measures an investigation (or a checkpoint return) set in motion ------------------------


@dataclass(frozen=True)
class MeasureTest:
    """One required test: day N of the measures (None: the single negative test of 'nothing
    found'), the day it is due, the result on record, and where it stands."""

    day: int | None
    due_from: dt.datetime
    due_by: dt.datetime
    result: TestResult | None
    state: str  # "on_record", "missing" (its day is over), "due" (today), "upcoming", "withdrawn" (task ended)


@dataclass(frozen=True)
class TaskMeasures:
    tests: list[MeasureTest]
    order: HealthStatusOrder | None        # the yellow/red order the outcome placed
    commitment_required: bool
    commitment_signed_at: dt.datetime | None
    measures_until: dt.datetime | None
    negative_test_after: dt.datetime | None
    negative_result: TestResult | None     # the negative that clears, once on record
    still_needed: list[str]

    @property
    def test_missing(self) -> bool:
        return any(t.state == "missing" for t in self.tests)


def task_measures(task: ClearanceTask, *, at: dt.datetime | None = None) -> TaskMeasures | None:
    """What the task's investigation (or checkpoint pre-approval) asks of the resident and what is
    on record: each test day with its dates and result, the observation order and its end, and
    what is still needed before the popup can be lifted. None before any measures were set."""
    if task.investigated_at is None:
        return None
    at = at or clock.now()
    requirements = list(TestRequirement.objects.filter(resident_id=task.resident_id,
                                                       source_ref__startswith=f"clearance:{task.pk}:")
                        .order_by("trigger_at", "id"))
    results = list(TestResult.objects.filter(resident_id=task.resident_id, sampled_at__gte=task.investigated_at,
                                             received_at__lte=at).order_by("sampled_at", "id"))
    tests = []
    for req in requirements:
        suffix = req.source_ref.rsplit(":", 1)[-1]
        day = int(suffix[3:]) if suffix.startswith("day") and suffix[3:].isdigit() else None
        result = next((r for r in results if req.trigger_at <= r.sampled_at < req.deadline_at), None)
        state = ("on_record" if result is not None else "withdrawn" if req.withdrawn_at is not None
                 else "missing" if at >= req.deadline_at else "due" if at >= req.trigger_at else "upcoming")
        tests.append(MeasureTest(day=day, due_from=req.trigger_at, due_by=req.deadline_at, result=result, state=state))
    order = (HealthStatusOrder.objects.filter(resident_id=task.resident_id, starts_at=task.investigated_at)
             .order_by("-id").first())
    negative = None
    if task.negative_test_after is not None:
        negative = next((r for r in results if r.result == TestResult.Outcome.NEGATIVE
                         and r.sampled_at >= task.negative_test_after), None)
    needed: list[str] = []
    if task.is_open:
        if task.commitment_required and task.commitment_signed_at is None:
            needed.append(_("Sign the commitment letter (the link came by SMS)."))
        for t in tests:
            when = timezone.localtime(t.due_from).strftime("%Y-%m-%d")
            if t.state == "missing":
                needed.append(_("The test of %(what)s was not taken (due %(date)s): take one now.") % {
                    "what": _("day %(n)d") % {"n": t.day} if t.day else _("the investigation"), "date": when})
            elif t.state in ("due", "upcoming"):
                needed.append(_("Take the test of %(what)s on %(date)s (by %(by)s).") % {
                    "what": _("day %(n)d") % {"n": t.day} if t.day else _("the investigation"), "date": when,
                    "by": timezone.localtime(t.due_by).strftime("%Y-%m-%d %H:%M")})
        if task.measures_until is not None and at < task.measures_until:
            needed.append(_("The measures run until %(until)s.") % {
                "until": timezone.localtime(task.measures_until).strftime("%Y-%m-%d %H:%M")})
        if task.negative_test_after is not None and negative is None:
            needed.append(_("A negative result of a test taken on or after %(after)s must be on record.") % {
                "after": timezone.localtime(task.negative_test_after).strftime("%Y-%m-%d %H:%M")})
        if not needed and task.state == ClearanceTask.State.MEASURES:
            needed.append(_("Nothing: everything is on record; the popup is lifted at the next check."))
    return TaskMeasures(tests=tests, order=order, commitment_required=task.commitment_required,
                        commitment_signed_at=task.commitment_signed_at, measures_until=task.measures_until,
                        negative_test_after=task.negative_test_after, negative_result=negative, still_needed=needed)


def tasks_with_test_missing(*, at: dt.datetime | None = None) -> Exists:
    """For the worklist: a task in measures has a required test whose day has begun (today's or
    an earlier day's) and no test taken in its window on record."""
    at = at or clock.now()
    taken = TestResult.objects.filter(resident=OuterRef("resident"), sampled_at__gte=OuterRef("trigger_at"),
                                      sampled_at__lt=OuterRef("deadline_at"), received_at__lte=at)
    return Exists(TestRequirement.objects.filter(
        resident=OuterRef("resident"), kind__in=[TestRequirement.Kind.INVESTIGATION, TestRequirement.Kind.CHECKPOINT],
        trigger_at__gte=OuterRef("investigated_at"), trigger_at__lte=at, withdrawn_at__isnull=True,
    ).filter(~Exists(taken)))
