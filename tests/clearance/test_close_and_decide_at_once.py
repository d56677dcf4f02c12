"""The hotline closes an appeal at the very moment its community decides the task: one waits for
the other (never a deadlock and a 500), exactly one decision stands and the resident is texted
one outcome."""

import pytest

from appeals import services as appeal_services
from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from appeals.models import Appeal
from communities.models import User
from healthkit.errors import ApplicationError
from healthkit.models import PopupCase, SmsMessage
from tests.concurrency import at_once
from tests.factories import PopupCaseFactory, UserFactory
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db(transaction=True)

OUTCOME_SMS = ["appeal_closed", "clearance_lifted", "clearance_accepted", "clearance_rejected"]


@pytest.mark.parametrize("attempt", range(3))
def test_close_and_accept_at_once_leave_one_decision_and_one_sms(attempt):
    appeal = RoutedAppealFactory(popup=None)
    appeal.popup = PopupCaseFactory(resident=appeal.resident, popup_type=1)
    appeal.save(update_fields=["popup"])
    task = services.clearance_open_for_appeal(appeal=appeal)
    operator = UserFactory(role=User.Role.OPERATOR)
    worker = WorkerFactory(communities=[task.community])

    closed, accepted = at_once(
        lambda: appeal_services.appeal_close(appeal=appeal, actor=operator, reason="不予受理", outcome="rejected"),
        lambda: services.clearance_accept(task=task, actor=worker, reason="已核实返京"))

    assert isinstance(closed, Appeal), closed  # the close always goes through (or finds it closed)
    appeal.refresh_from_db()
    task.refresh_from_db()
    popup = PopupCase.objects.get(pk=appeal.popup_id)
    texted = list(SmsMessage.objects.filter(purpose__in=OUTCOME_SMS).values_list("purpose", flat=True))
    if isinstance(accepted, ClearanceTask):  # the community first: the hotline's close found it closed
        assert (task.state, appeal.outcome, popup.state) == ("lifted", "lifted", "lifted")
        assert texted == ["clearance_lifted"]
    else:  # the hotline first: the task is withdrawn and the worker told so
        assert isinstance(accepted, ApplicationError) and operator.username in accepted.message, accepted
        assert (task.state, appeal.outcome, popup.state) == ("closed", "rejected", "active")
        assert texted == ["appeal_closed"]
