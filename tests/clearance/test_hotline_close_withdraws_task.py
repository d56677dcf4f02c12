"""The hotline closes an appeal while its community is still deciding: exactly one decision
stands. A task opened for the appeal and still awaiting the community is withdrawn (the worker's
later decision is refused, saying who withdrew it and why, and the resident gets the hotline's
SMS only); a task the community holds for the popup on its own goes on without the appeal."""

import pytest
from django.urls import reverse

from appeals import services as appeal_services
from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceLink, ClearanceTask
from appeals.models import Appeal, AppealEvent
from communities.models import User
from healthkit.errors import ApplicationError
from healthkit.models import PopupCase, SmsMessage
from tests.concurrency import page_seen, post_messages, signed_in
from tests.factories import PopupCaseFactory, UserFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def _routed_with_task(popup_type: int = 1) -> tuple[Appeal, ClearanceTask]:
    appeal = RoutedAppealFactory(popup=None)
    appeal.popup = PopupCaseFactory(resident=appeal.resident, popup_type=popup_type)
    appeal.save(update_fields=["popup"])
    task = services.clearance_open_for_appeal(appeal=appeal)
    return appeal, task


def _decisions_texted() -> list[str]:
    """The purposes of the outcome SMS queued for the resident (links left out)."""
    return sorted(SmsMessage.objects.filter(purpose__in=[
        "appeal_closed", "clearance_lifted", "clearance_accepted", "clearance_rejected"]).values_list("purpose", flat=True))


def test_operator_rejects_then_the_community_accept_is_refused_and_the_resident_hears_once():
    appeal, task = _routed_with_task()
    operator = UserFactory(role=User.Role.OPERATOR)
    worker = WorkerFactory(communities=[task.community])
    worker_client = signed_in(worker)
    task_url = reverse("clearance:task", args=[task.pk])
    worker_seen = page_seen(worker_client, task_url)  # the worker opened the task before the close

    operator_client = signed_in(operator)
    ticket = reverse("appeals:ticket", args=[appeal.pk])
    post_messages(operator_client, reverse("appeals:ticket-action", args=[appeal.pk, "close"]),
                  {"reason": "无入境记录，不予处理", "outcome": "rejected", **page_seen(operator_client, ticket)})
    shown = post_messages(worker_client, reverse("clearance:task-action", args=[task.pk, "accept"]),
                          {"reason": "已核实返京", **worker_seen})

    task.refresh_from_db()
    appeal.refresh_from_db()
    assert (appeal.status, appeal.outcome) == (Appeal.Status.CLOSED, "rejected")
    assert task.state == ClearanceTask.State.CLOSED and task.decided_by == operator
    assert appeal.popup.__class__.objects.get(pk=appeal.popup_id).state == PopupCase.State.ACTIVE
    withdrawn = task.events.get(kind=ClearanceEvent.Kind.WITHDRAWN)
    assert (withdrawn.actor, withdrawn.reason, withdrawn.data["reference"]) == (
        operator, "无入境记录，不予处理", appeal.reference)
    assert not task.events.filter(kind=ClearanceEvent.Kind.LIFTED).exists()
    assert any("withdrew" in m and operator.username in m and appeal.reference in m for m in shown), shown
    # one outcome reaches the resident: the hotline's
    assert _decisions_texted() == ["appeal_closed"]
    assert not ClearanceLink.objects.filter(task=task, used_at__isnull=True, revoked_at__isnull=True).exists()


def test_a_late_decision_through_the_api_is_refused_with_who_withdrew_it():
    appeal, task = _routed_with_task()
    operator = UserFactory(role=User.Role.OPERATOR)
    appeal_services.appeal_close(appeal=appeal, actor=operator, reason="重复来电", outcome="duplicate")

    with pytest.raises(ApplicationError) as refused:
        services.clearance_reject(task=task, actor=WorkerFactory(communities=[task.community]), reason="材料不足",
                                  next_step=ClearanceTask.NextStep.WAIT_7_DAYS)

    assert operator.username in refused.value.message and appeal.reference in refused.value.message
    assert _decisions_texted() == ["appeal_closed"]
    assert ClearanceTask.objects.get(pk=task.pk).state == ClearanceTask.State.CLOSED


def test_a_confirmed_popup_goes_back_to_active_when_its_task_is_withdrawn():
    appeal, task = _routed_with_task()
    PopupCase.objects.filter(pk=appeal.popup_id).update(state=PopupCase.State.UNDER_REVIEW)
    ClearanceTask.objects.filter(pk=task.pk).update(state=ClearanceTask.State.CONFIRMED)

    appeal_services.appeal_close(appeal=appeal, actor=UserFactory(role=User.Role.OPERATOR), reason="居民撤回",
                                 outcome="withdrawn")

    assert PopupCase.objects.get(pk=appeal.popup_id).state == PopupCase.State.ACTIVE
    assert ClearanceTask.objects.get(pk=task.pk).state == ClearanceTask.State.CLOSED


def test_the_community_s_own_task_goes_on_without_the_closed_appeal():
    task = ClearanceTaskFactory()  # the sweep's popup 3 investigation
    appeal = RoutedAppealFactory(resident=task.resident, popup=task.popup)
    services.clearance_open_for_appeal(appeal=appeal)

    appeal_services.appeal_close(appeal=appeal, actor=UserFactory(role=User.Role.OPERATOR), reason="已转社区排查",
                                 outcome="other")

    task.refresh_from_db()
    assert task.is_open and task.appeal is None
    assert task.events.filter(kind=ClearanceEvent.Kind.APPEAL_CLOSED, data__reference=appeal.reference).exists()
    assert AppealEvent.objects.get(appeal=appeal, kind=AppealEvent.Kind.CLOSED).data["clearance_goes_on"] == task.pk
    closed = SmsMessage.objects.get(purpose="appeal_closed")
    assert task.community.name in closed.body  # told the community goes on, so its decision is no surprise


def test_the_community_deciding_first_leaves_the_hotline_nothing_to_withdraw():
    appeal, task = _routed_with_task()

    services.clearance_accept(task=task, actor=WorkerFactory(communities=[task.community]), reason="已核实")

    appeal.refresh_from_db()
    assert (appeal.status, appeal.outcome) == (Appeal.Status.CLOSED, "lifted")
    assert not ClearanceEvent.objects.filter(kind=ClearanceEvent.Kind.WITHDRAWN).exists()


def test_a_new_appeal_joins_the_task_that_went_on_and_its_decision_closes_that_appeal():
    task = ClearanceTaskFactory(popup=PopupCaseFactory(popup_type=1))
    ClearanceTask.objects.filter(pk=task.pk).update(origin=ClearanceTask.Origin.IN_CITY)
    first = RoutedAppealFactory(resident=task.resident, popup=task.popup)
    services.clearance_open_for_appeal(appeal=first)
    appeal_services.appeal_close(appeal=first, actor=UserFactory(role=User.Role.OPERATOR), reason="居民来电撤回",
                                 outcome="withdrawn")
    again = RoutedAppealFactory(resident=task.resident, popup=task.popup)

    joined = services.clearance_open_for_appeal(appeal=again)
    services.clearance_accept(task=joined, actor=WorkerFactory(communities=[task.community]), reason="已核实")

    assert joined.pk == task.pk
    assert (Appeal.objects.get(pk=again.pk).outcome, Appeal.objects.get(pk=first.pk).outcome) == ("lifted", "withdrawn")
