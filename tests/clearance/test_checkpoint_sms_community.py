"""The checkpoint pre-approval SMS names the task's community, not the one the worker had
selected, and carries the letter's link in the same SMS with the signature and reference."""

import pytest

from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from healthkit import clock
from healthkit.models import SmsMessage
from tests.factories import CommunityFactory, PopupCaseFactory, ResidentFactory
from tests.factories.clearance import ClearanceTaskFactory, WorkerFactory
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db
AT = cst(2022, 10, 8, 15)


def test_one_sms_names_the_task_community_throughout(settings):
    home = CommunityFactory(name="望京西园社区")
    selected = CommunityFactory(name="花家地社区")
    resident = ResidentFactory(community=home)
    popup = PopupCaseFactory(resident=resident, popup_type=3)
    task = ClearanceTaskFactory(resident=resident, community=home, popup=popup)  # already open at home
    worker = WorkerFactory(communities=[home, selected])
    with clock.frozen_at(AT):
        result = services.clearance_checkpoint_preapprove(
            actor=worker, resident=resident, community=selected, popup=popup, measure="three_days_two_tests",
            reason="检查站电话")
    assert result.pk == task.pk and result.community == home
    [message] = SmsMessage.objects.filter(idempotency_key__startswith=f"clearance:{task.pk}:")
    assert "望京西园社区" in message.body and "花家地社区" not in message.body
    assert message.body.startswith(settings.SMS_SIGNATURE) and task.reference in message.body
    assert "/clearance/r/" in message.body  # the commitment letter's link, in the same SMS
    assert message.not_before is None  # the resident is at the checkpoint now


def test_community_link_sms_carry_signature_and_appeal_reference(settings):
    from tests.factories.clearance import RoutedAppealFactory

    appeal = RoutedAppealFactory()
    task = ClearanceTaskFactory(resident=appeal.resident, popup=appeal.popup, appeal=appeal,
                                origin=ClearanceTask.Origin.APPEAL)
    services.clearance_link_issue(task=task)
    message = SmsMessage.objects.get(idempotency_key__startswith=f"clearance:{task.pk}:link")
    assert message.body.startswith(settings.SMS_SIGNATURE) and appeal.reference in message.body
