"""Whatever the hotline (or the resident) does to an appeal, the community's open task for it
follows in the same transaction (appeals.clearance.services.clearance_follow_appeal): asked for
evidence, the task is on hold on both consoles with its SLA clock stopped, and resumes when the
evidence arrives; re-routed, it moves at once with a fresh SLA clock; linked to a popup, it works
on that popup; raised in priority, it is raised; ended without its measures, the tests it
required are withdrawn."""

import datetime as dt

import pytest
from django.urls import reverse

from appeals import notices
from appeals import services as appeal_services
from appeals.clearance import selectors, services
from appeals.clearance.models import ClearanceEvent, ClearanceTask
from appeals.models import Appeal, AppealEvent
from appeals.services import evidence_store
from communities.models import User
from healthkit import clock, engine
from healthkit.errors import ApplicationError
from healthkit.models import PopupCase, TestRequirement
from tests.concurrency import signed_in
from tests.factories import CommunityFactory, PopupCaseFactory, UserFactory
from tests.factories.appeals import upload
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db
AT = cst(2022, 11, 10, 10)


def _routed(popup_type: int | None = 1) -> tuple[Appeal, ClearanceTask]:
    appeal = RoutedAppealFactory(popup=None)
    if popup_type is not None:
        appeal.popup = PopupCaseFactory(resident=appeal.resident, popup_type=popup_type)
        appeal.save(update_fields=["popup"])
    with clock.frozen_at(AT):
        return appeal, services.clearance_open_for_appeal(appeal=appeal)


def _operator() -> User:
    return UserFactory(role=User.Role.OPERATOR)


def _ask_for_evidence(appeal: Appeal, monkeypatch, *, at: dt.datetime) -> str:
    """The operator asks for more evidence; returns the token of the resident's link."""
    sent: dict[str, str] = {}
    monkeypatch.setattr(notices, "notify_waiting",
                        lambda appeal, *, link, url, message="": sent.update(token=url.rstrip("/").rsplit("/", 1)[-1]))
    with clock.frozen_at(at):
        appeal_services.appeal_request_evidence(appeal=appeal, actor=_operator(), message="请补充行程卡截图")
    return sent["token"]


# --- 1. asking the resident for evidence --------------------------------------------------------

def test_asking_for_evidence_puts_the_task_on_hold_on_both_consoles_and_stops_its_sla_clock(monkeypatch):
    appeal, task = _routed()
    due = task.sla_due_at

    _ask_for_evidence(appeal, monkeypatch, at=AT + dt.timedelta(hours=2))

    task.refresh_from_db()
    assert task.on_hold_since == AT + dt.timedelta(hours=2) and task.state == ClearanceTask.State.OPEN
    held = task.events.get(kind=ClearanceEvent.Kind.ON_HOLD)
    assert held.reason == "请补充行程卡截图" and held.data["reference"] == appeal.reference and held.actor
    # the SLA sweep does not escalate a task on hold, however long the resident takes
    assert services.clearance_sla_sweep(at=due + dt.timedelta(hours=5)) == 0
    worker = WorkerFactory(communities=[task.community])
    with clock.frozen_at(due + dt.timedelta(hours=5)):
        assert not selectors.worklist(user=worker, filters=selectors.WorklistFilters(overdue=True)).exists()
    page = signed_in(worker).get(reverse("clearance:task", args=[task.pk])).content.decode()
    assert 'id="task-hold"' in page and "请补充行程卡截图" in page and appeal.reference in page
    worklist = signed_in(worker).get(reverse("clearance:worklist")).content.decode()
    assert 'data-on-hold="1"' in worklist
    ticket = signed_in(_operator()).get(reverse("appeals:ticket", args=[appeal.pk])).content.decode()
    assert 'id="clearance-task" data-state="open"' in ticket and "On hold" in ticket
    api = signed_in(worker).get(reverse("clearance:api-detail", args=[task.pk])).json()
    assert api["on_hold_since"] is not None


def test_the_resident_s_evidence_resumes_the_task_and_gives_the_appeal_back_to_the_community(monkeypatch):
    appeal, task = _routed()
    due = task.sla_due_at
    token = _ask_for_evidence(appeal, monkeypatch, at=AT + dt.timedelta(hours=2))

    with clock.frozen_at(AT + dt.timedelta(hours=9)):
        appeal_services.appeal_link_submit(token=token, uploads=[upload()], note="补充了行程卡")

    appeal.refresh_from_db()
    task.refresh_from_db()
    assert appeal.status == Appeal.Status.ROUTED  # with the community again, not back in the hotline's queue
    assert task.on_hold_since is None
    assert task.sla_due_at == due + dt.timedelta(hours=7)  # the 7 hours on hold did not count
    resumed = task.events.get(kind=ClearanceEvent.Kind.RESUMED)
    assert resumed.data["evidence"] == 1 and resumed.data["held_minutes"] == 7 * 60


def test_a_repeat_filing_with_pictures_answers_the_request_as_the_link_does(monkeypatch):
    appeal, task = _routed()
    _ask_for_evidence(appeal, monkeypatch, at=AT + dt.timedelta(hours=1))
    evidence_store(upload=upload(), draft_key="again")

    with clock.frozen_at(AT + dt.timedelta(hours=3)):
        _again, folded = appeal_services.appeal_file(resident=appeal.resident, popup=appeal.popup,
                                                     category=Appeal.Category.CORRECTION, draft_key="again")

    assert folded
    appeal.refresh_from_db()
    task.refresh_from_db()
    assert (appeal.status, task.on_hold_since) == (Appeal.Status.ROUTED, None)
    assert task.events.get(kind=ClearanceEvent.Kind.RESUMED).data["evidence"] == 1


def test_a_decision_while_on_hold_closes_the_appeal_ends_the_hold_and_the_evidence_link(monkeypatch):
    appeal, task = _routed()
    token = _ask_for_evidence(appeal, monkeypatch, at=AT + dt.timedelta(hours=1))

    services.clearance_accept(task=task, actor=WorkerFactory(communities=[task.community]), reason="已核实")

    task.refresh_from_db()
    appeal.refresh_from_db()
    assert (task.state, task.on_hold_since, appeal.status) == ("lifted", None, Appeal.Status.CLOSED)
    with pytest.raises(ApplicationError):  # "This link is no longer valid"
        appeal_services.appeal_link_submit(token=token, uploads=[upload()])


# --- 2. linking a popup --------------------------------------------------------------------------

def test_linking_a_popup_gives_it_to_the_task_opened_without_one():
    appeal, task = _routed(popup_type=None)
    assert task.popup_id is None
    popup = PopupCaseFactory(resident=appeal.resident, popup_type=1)

    appeal_services.appeal_link_popup(appeal=appeal, popup=popup, actor=_operator())

    task.refresh_from_db()
    assert task.popup_id == popup.pk
    linked = task.events.get(kind=ClearanceEvent.Kind.POPUP_LINKED)
    assert linked.data["popup"] == popup.pk and linked.data["from_popup"] is None


def test_linking_another_popup_moves_the_task_and_frees_the_popup_it_had_put_under_review():
    appeal, task = _routed()
    first = PopupCase.objects.get(pk=appeal.popup_id)
    PopupCase.objects.filter(pk=first.pk).update(state=PopupCase.State.UNDER_REVIEW)
    ClearanceTask.objects.filter(pk=task.pk).update(state=ClearanceTask.State.CONFIRMED, confirmed_at=AT)
    second = PopupCaseFactory(resident=appeal.resident, popup_type=3)

    appeal_services.appeal_link_popup(appeal=appeal, popup=second, actor=_operator())

    task.refresh_from_db()
    assert task.popup_id == second.pk
    assert PopupCase.objects.get(pk=first.pk).state == PopupCase.State.ACTIVE
    assert PopupCase.objects.get(pk=second.pk).state == PopupCase.State.UNDER_REVIEW  # the resident had confirmed


def test_linking_the_popup_another_appeal_s_task_works_on_is_refused_with_a_merge_suggestion():
    appeal, own = _routed(popup_type=None)
    holder, theirs = _routed()
    PopupCase.objects.filter(pk=holder.popup_id).update(resident=appeal.resident)
    Appeal.objects.filter(pk=holder.pk).update(resident=appeal.resident, popup=None)  # the holder lost its link

    with pytest.raises(ApplicationError) as refused:
        appeal_services.appeal_link_popup(appeal=appeal, popup=PopupCase.objects.get(pk=theirs.popup_id),
                                          actor=_operator())

    assert refused.value.extra == {"task": theirs.pk, "appeal": holder.reference}
    appeal.refresh_from_db()
    own.refresh_from_db()
    assert (appeal.popup_id, own.popup_id, own.state) == (None, None, ClearanceTask.State.OPEN)


def test_linking_the_popup_another_task_works_on_joins_that_task():
    appeal, own = _routed(popup_type=None)
    popup = PopupCaseFactory(resident=appeal.resident, popup_type=3)
    swept = ClearanceTaskFactory(resident=appeal.resident, popup=popup)  # the popup sweep's task

    appeal_services.appeal_link_popup(appeal=appeal, popup=popup, actor=_operator())

    own.refresh_from_db()
    swept.refresh_from_db()
    assert swept.appeal_id == appeal.pk and swept.is_open
    assert own.state == ClearanceTask.State.CLOSED
    assert own.events.filter(kind=ClearanceEvent.Kind.APPEAL_UNLINKED, data__to_task=swept.pk).exists()


# --- 3. re-routing ---------------------------------------------------------------------------------

def test_re_routing_moves_the_task_at_once_with_a_fresh_sla_clock():
    appeal, task = _routed()
    first = task.community
    assert services.clearance_sla_sweep(at=task.sla_due_at + dt.timedelta(minutes=1)) == 1
    other = CommunityFactory()
    first_worker, second_worker = WorkerFactory(communities=[first]), WorkerFactory(communities=[other])

    at = AT + dt.timedelta(days=2)
    with clock.frozen_at(at):
        appeal_services.appeal_route(appeal=appeal, community=other, actor=_operator(), reason="住址在另一社区")

    # in the same transaction, not when the queued job runs
    task.refresh_from_db()
    assert task.community == other
    assert (task.sla_breached_at, task.escalated_at) == (None, None)
    assert task.sla_due_at == at + dt.timedelta(hours=24)
    moved = task.events.get(kind=ClearanceEvent.Kind.REROUTED)
    assert moved.data["from"] == first.pk and moved.data["sla_breached_at"] is not None
    assert selectors.state_counts(user=first_worker)["open"] == 0
    assert selectors.state_counts(user=second_worker)["open"] == 1
    with clock.frozen_at(at + dt.timedelta(hours=1)):
        assert not selectors.worklist(user=second_worker, filters=selectors.WorklistFilters(overdue=True)).exists()


# --- 4. tests required by a task that ends without its measures ------------------------------------

def _investigated() -> tuple[Appeal, ClearanceTask]:
    appeal, task = _routed(popup_type=3)
    with clock.frozen_at(AT):
        task = services.clearance_investigate(task=task, actor=WorkerFactory(communities=[task.community]),
                                              outcome=ClearanceTask.Outcome.LISTED_AREA, reason="其他涉疫地区")
    assert TestRequirement.objects.filter(resident=task.resident, withdrawn_at__isnull=True).count() == 4
    return appeal, task


def _type_4(resident, at) -> list[PopupCase]:
    engine.evaluate(resident_ids=[resident.pk], at=at)
    return list(PopupCase.objects.filter(resident=resident, popup_type=4, state__in=PopupCase.OPEN_STATES))


def test_a_task_closed_because_its_popup_ended_withdraws_the_tests_it_required():
    appeal, task = _investigated()
    PopupCase.objects.filter(pk=task.popup_id).update(state=PopupCase.State.WITHDRAWN, lifted_at=AT)

    services.clearance_measures_sweep(at=AT + dt.timedelta(hours=2))

    task.refresh_from_db()
    assert task.state == ClearanceTask.State.CLOSED
    withdrawn = sorted(TestRequirement.objects.filter(withdrawn_at__isnull=False).values_list("pk", flat=True))
    assert len(withdrawn) == 4  # day 1's deadline (end of day 2 plus the lab's grace) had not passed
    assert task.events.get(kind=ClearanceEvent.Kind.CLOSED).data["requirements_withdrawn"] == withdrawn
    assert {t.state for t in selectors.task_measures(task, at=cst(2022, 11, 19)).tests} == {"withdrawn"}
    # no test taken on any day: nothing is raised, the resident is not texted about tests nobody follows
    assert _type_4(task.resident, cst(2022, 11, 19)) == []


def test_a_rejected_task_withdraws_the_tests_not_yet_due_and_keeps_what_a_missed_one_raised():
    appeal, task = _investigated()
    missed = cst(2022, 11, 12, 0, 0, 1)  # day 1's deadline has passed without a test
    assert len(_type_4(task.resident, missed)) == 1

    with clock.frozen_at(missed):
        services.clearance_reject(task=task, actor=WorkerFactory(communities=[task.community]), reason="拒绝配合",
                                  next_step=ClearanceTask.NextStep.CONTACT_COMMUNITY)

    kept = TestRequirement.objects.filter(withdrawn_at__isnull=True)
    assert [r.source_ref.rsplit(":", 1)[-1] for r in kept] == ["day1"]
    assert len(_type_4(task.resident, cst(2022, 11, 19))) == 1  # day 1's popup 4 stands until a negative result


def test_a_task_going_on_without_its_closed_appeal_keeps_its_tests():
    appeal, task = _investigated()

    appeal_services.appeal_close(appeal=appeal, actor=_operator(), reason="居民撤回", outcome="withdrawn")

    task.refresh_from_db()
    assert task.state == ClearanceTask.State.MEASURES and task.appeal_id is None
    assert not TestRequirement.objects.filter(withdrawn_at__isnull=False).exists()


def test_closing_an_appeal_on_hold_ends_the_hold_of_the_task_that_goes_on(monkeypatch):
    appeal, task = _investigated()
    _ask_for_evidence(appeal, monkeypatch, at=AT + dt.timedelta(hours=1))

    appeal_services.appeal_close(appeal=appeal, actor=_operator(), reason="居民撤回", outcome="withdrawn")

    task.refresh_from_db()
    assert (task.state, task.appeal_id, task.on_hold_since) == (ClearanceTask.State.MEASURES, None, None)


# --- the other changes -------------------------------------------------------------------------------

def test_a_more_urgent_appeal_raises_its_task():
    appeal, task = _routed()

    with clock.frozen_at(AT + dt.timedelta(hours=1)):
        appeal_services.appeal_set_priority(appeal=appeal, priority=Appeal.Priority.EMERGENCY, actor=_operator(),
                                            reason="家属病危")

    task.refresh_from_db()
    assert task.priority == ClearanceTask.Priority.EMERGENCY
    assert task.sla_due_at == AT + dt.timedelta(hours=1 + 4)
    assert task.events.filter(kind=ClearanceEvent.Kind.PRIORITISED).exists()


# --- 5. merging a duplicate ----------------------------------------------------------------------

def _beside(appeal: Appeal, **fields) -> Appeal:
    """Another open appeal of the same resident, still with the hotline (no community, no task)."""
    fields = {"popup": None, **fields}
    return RoutedAppealFactory(resident=appeal.resident, status=Appeal.Status.IN_PROGRESS,
                               routed_community=None, routed_at=None, **fields)


def _merge(duplicate: Appeal, into: Appeal, *, at: dt.datetime, actor: User | None = None) -> None:
    with clock.frozen_at(at):
        appeal_services.appeal_merge(duplicate=duplicate, into=into, actor=actor or _operator())


def test_merging_a_routed_duplicate_into_an_appeal_without_a_task_hands_its_task_over():
    duplicate, task = _routed()
    community = task.community
    worker = WorkerFactory(communities=[community])
    with clock.frozen_at(AT + dt.timedelta(hours=1)):
        services.clearance_call_log(task=task, actor=worker, direction="outbound", outcome="reached", note="已联系")
    into = _beside(duplicate, priority=Appeal.Priority.EMERGENCY)
    operator = _operator()

    _merge(duplicate, into, at=AT + dt.timedelta(hours=2), actor=operator)

    task.refresh_from_db()
    into.refresh_from_db()
    # the community's work goes on for the surviving appeal: same task, same history, same community
    assert (task.appeal_id, task.state, task.community) == (into.pk, ClearanceTask.State.OPEN, community)
    assert task.events.filter(kind=ClearanceEvent.Kind.CALL, reason="已联系").exists()
    assert not task.events.filter(kind=ClearanceEvent.Kind.WITHDRAWN).exists()
    merged = task.events.get(kind=ClearanceEvent.Kind.APPEAL_MERGED)
    assert merged.actor == operator
    assert (merged.data["reference"], merged.data["into_reference"]) == (duplicate.reference, into.reference)
    # the more urgent of the two: the surviving appeal's emergency, with the emergency SLA from the merge
    assert task.priority == ClearanceTask.Priority.EMERGENCY
    assert task.sla_due_at == AT + dt.timedelta(hours=2 + 4)
    # the surviving appeal is with the community, as routing it there would have left it
    assert (into.status, into.routed_community) == (Appeal.Status.ROUTED, community)
    assert into.routed_at is not None and into.events.filter(kind="routed", data__task=task.pk).exists()
    assert selectors.state_counts(user=worker)["open"] == 1
    # and the community's decision now decides the surviving appeal
    services.clearance_accept(task=task, actor=worker, reason="已核实返京")
    into.refresh_from_db()
    assert (into.status, into.outcome) == (Appeal.Status.CLOSED, "lifted")


def test_an_appeal_without_a_popup_takes_the_popup_of_the_task_it_takes_over():
    duplicate, task = _routed()
    into = _beside(duplicate)
    assert into.popup_id is None and task.popup_id == duplicate.popup_id

    _merge(duplicate, into, at=AT + dt.timedelta(hours=2))

    into.refresh_from_db()
    assert (into.popup_id, into.popup_type_claimed) == (task.popup_id, task.popup.popup_type)
    linked = into.events.get(kind=AppealEvent.Kind.POPUP_LINKED)
    assert (linked.data["how"], linked.data["popup"], linked.public) == ("merged", task.popup_id, False)
    # the surviving appeal is found as any appeal linked to its popup is
    assert appeal_services.appeal_link_popup(appeal=into, popup=task.popup, actor=_operator()).pk == into.pk


def test_a_duplicate_s_task_in_measures_goes_on_for_the_appeal_it_was_merged_into():
    duplicate, task = _investigated()
    into = _beside(duplicate)

    _merge(duplicate, into, at=AT + dt.timedelta(hours=3))

    task.refresh_from_db()
    into.refresh_from_db()
    assert (task.appeal_id, task.state) == (into.pk, ClearanceTask.State.MEASURES)
    assert task.outcome == ClearanceTask.Outcome.LISTED_AREA
    assert not TestRequirement.objects.filter(withdrawn_at__isnull=False).exists()  # its tests still stand
    assert into.status == Appeal.Status.ROUTED


def test_a_duplicate_s_task_on_hold_resumes_for_the_appeal_it_was_merged_into(monkeypatch):
    duplicate, task = _routed()
    due = task.sla_due_at
    _ask_for_evidence(duplicate, monkeypatch, at=AT + dt.timedelta(hours=1))
    into = _beside(duplicate)

    _merge(duplicate, into, at=AT + dt.timedelta(hours=4))

    task.refresh_from_db()
    assert (task.appeal_id, task.on_hold_since) == (into.pk, None)  # nobody waits on the closed duplicate's link
    assert task.sla_due_at == due + dt.timedelta(hours=3)  # the 3 hours on hold did not count
    assert task.events.get(kind=ClearanceEvent.Kind.APPEAL_MERGED).data["held_minutes"] == 3 * 60


def test_a_task_handed_to_an_appeal_waiting_for_its_resident_waits_with_it(monkeypatch):
    duplicate, task = _routed()
    into = _beside(duplicate)
    token = _ask_for_evidence(into, monkeypatch, at=AT + dt.timedelta(hours=1))

    _merge(duplicate, into, at=AT + dt.timedelta(hours=2))

    task.refresh_from_db()
    into.refresh_from_db()
    assert (task.appeal_id, task.on_hold_since) == (into.pk, AT + dt.timedelta(hours=2))
    assert (into.status, into.routed_community) == (Appeal.Status.WAITING_RESIDENT, task.community)
    hold = selectors.task_hold(task)  # the task page says who asked the resident what, until when
    assert (hold.message, hold.reference, hold.expires_at is not None) == ("请补充行程卡截图", into.reference, True)
    with clock.frozen_at(AT + dt.timedelta(hours=5)):
        appeal_services.appeal_link_submit(token=token, uploads=[upload()], note="补充了行程卡")
    task.refresh_from_db()
    into.refresh_from_db()
    assert (into.status, task.on_hold_since) == (Appeal.Status.ROUTED, None)  # back with the community


def test_merging_into_an_appeal_with_its_own_task_withdraws_the_duplicate_s_saying_into_which():
    duplicate, task = _routed()
    into = RoutedAppealFactory(resident=duplicate.resident,
                               popup=PopupCaseFactory(resident=duplicate.resident, popup_type=2))
    with clock.frozen_at(AT):
        kept = services.clearance_open_for_appeal(appeal=into)
    Appeal.objects.filter(pk=duplicate.pk).update(priority=Appeal.Priority.EMERGENCY)

    _merge(duplicate, into, at=AT + dt.timedelta(hours=2))

    task.refresh_from_db()
    kept.refresh_from_db()
    assert task.state == ClearanceTask.State.CLOSED and task.appeal_id == duplicate.pk
    withdrawn = task.events.get(kind=ClearanceEvent.Kind.WITHDRAWN)
    assert (withdrawn.data["into_task"], withdrawn.data["into_reference"]) == (kept.pk, into.reference)
    assert kept.reference in withdrawn.reason
    assert (kept.state, kept.appeal_id) == (ClearanceTask.State.OPEN, into.pk)
    assert kept.priority == ClearanceTask.Priority.EMERGENCY  # the duplicate's urgency goes on in it
    assert not kept.events.filter(kind=ClearanceEvent.Kind.APPEAL_MERGED).exists()


def test_a_task_handed_to_an_appeal_on_another_popup_works_on_that_popup():
    duplicate, task = _routed()
    first = task.popup
    into = _beside(duplicate, popup=PopupCaseFactory(resident=duplicate.resident, popup_type=2))

    _merge(duplicate, into, at=AT + dt.timedelta(hours=2))

    task.refresh_from_db()
    into.refresh_from_db()
    assert (task.appeal_id, task.popup_id, task.state) == (into.pk, into.popup_id, ClearanceTask.State.OPEN)
    assert into.status == Appeal.Status.ROUTED
    assert task.events.filter(kind=ClearanceEvent.Kind.POPUP_LINKED, data__from_popup=first.pk).exists()
