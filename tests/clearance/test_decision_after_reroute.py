"""The hotline re-routes an appeal while the first community is deciding it: the task moves, and
the first community's decision (a page opened before, or the API) is refused, naming where it
went; a routing queued before a decision does not open a second task for the decided appeal."""

import pytest

from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from appeals.models import Appeal
from healthkit.errors import ApplicationError
from healthkit.models import SmsMessage
from tests.factories import CommunityFactory, PopupCaseFactory
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def _routed() -> tuple[Appeal, ClearanceTask]:
    appeal = RoutedAppealFactory(popup=None)
    appeal.popup = PopupCaseFactory(resident=appeal.resident, popup_type=1)
    appeal.save(update_fields=["popup"])
    return appeal, services.clearance_open_for_appeal(appeal=appeal)


@pytest.mark.parametrize("decide", [
    lambda task, worker: services.clearance_accept(task=task, actor=worker, reason="已核实"),
    lambda task, worker: services.clearance_reject(task=task, actor=worker, reason="材料不足",
                                                   next_step=ClearanceTask.NextStep.WAIT_7_DAYS),
    lambda task, worker: services.clearance_request_info(task=task, actor=worker, question="几号返京？"),
], ids=["accept", "reject", "info"])
def test_the_first_community_s_decision_after_the_move_is_refused(decide):
    appeal, task = _routed()
    first_worker = WorkerFactory(communities=[task.community])
    other = CommunityFactory()
    Appeal.objects.filter(pk=appeal.pk).update(routed_community=other)
    appeal.refresh_from_db()
    services.clearance_open_for_appeal(appeal=appeal)  # the hotline's re-route moves the task
    texted = SmsMessage.objects.count()

    with pytest.raises(ApplicationError) as refused:
        decide(task, first_worker)

    assert other.name in refused.value.message
    task.refresh_from_db()
    assert (task.state, task.community) == (ClearanceTask.State.OPEN, other)
    assert Appeal.objects.get(pk=appeal.pk).is_open
    assert SmsMessage.objects.count() == texted


def test_a_routing_queued_before_the_decision_opens_no_task_for_the_decided_appeal():
    appeal, task = _routed()
    queued = Appeal.objects.get(pk=appeal.pk)  # what the queued job loaded, before the decision
    services.clearance_accept(task=task, actor=WorkerFactory(communities=[task.community]), reason="已核实")
    texted = SmsMessage.objects.count()

    assert services.clearance_open_for_appeal(appeal=queued) is None

    assert list(ClearanceTask.objects.filter(appeal=appeal).values_list("state", flat=True)) == ["lifted"]
    assert SmsMessage.objects.count() == texted
