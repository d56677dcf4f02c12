"""A task whose first link SMS was lost (broker down at commit, a database restart failing the
send task for good) gets it from the every-minute catch-up job, once."""

import datetime as dt
from unittest import mock

import pytest
from django.db import OperationalError
from kombu.exceptions import OperationalError as BrokerDown

from appeals.clearance import services, tasks
from appeals.clearance.models import ClearanceLink, ClearanceTask
from appeals.clearance.schedule import BEAT_SCHEDULE
from healthkit.models import SmsMessage
from tests.factories import PopupCaseFactory

pytestmark = pytest.mark.django_db


def _age(ids):
    ClearanceTask.objects.filter(pk__in=ids).update(created_at=ClearanceTask.objects.get(pk=ids[0]).created_at
                                                    - services.sweeps.LINK_GRACE - dt.timedelta(seconds=1))


def test_lost_publishes_and_failed_sends_are_caught_up_once(sms_outbox, django_capture_on_commit_callbacks):
    for _ in range(3):
        PopupCaseFactory(popup_type=3, source="venue")
    with mock.patch.object(tasks.clearance_send_link, "delay", side_effect=BrokerDown("refused")), \
            django_capture_on_commit_callbacks(execute=True):
        ids = services.clearance_popup_sweep()  # committed; the publish failed and was logged
    assert len(ids) == 3 and not ClearanceLink.objects.exists()
    # a send that failed on a database error leaves nothing half-done
    with mock.patch("appeals.clearance.services.sweeps.clearance_link_issue",
                    side_effect=OperationalError("terminating connection")), pytest.raises(OperationalError):
        services.clearance_send_first_link(task_id=ids[0])
    assert tasks.clearance_link_catch_up() == 0  # too fresh: their own tasks go first
    _age(ids)
    assert tasks.clearance_link_catch_up() == 3
    assert tasks.clearance_link_catch_up() == 0
    assert ClearanceLink.objects.filter(task__in=ids).count() == 3
    assert SmsMessage.objects.filter(purpose="clearance_confirm").count() == 3
    assert "clearance-link-catch-up" in BEAT_SCHEDULE


def test_an_appeal_routed_while_the_broker_was_down_gets_its_task(sms_outbox, django_capture_on_commit_callbacks):
    from appeals.models import Appeal
    from tests.factories.clearance import RoutedAppealFactory

    appeal = RoutedAppealFactory()  # routed; its on-commit clearance_open_for_appeal never ran
    closed = RoutedAppealFactory(status=Appeal.Status.CLOSED)
    assert not ClearanceTask.objects.filter(appeal__in=[appeal, closed]).exists()
    assert tasks.clearance_link_catch_up() == 0  # too fresh: its own task goes first
    Appeal.objects.filter(pk__in=[appeal.pk, closed.pk]).update(
        routed_at=appeal.routed_at - services.sweeps.LINK_GRACE - dt.timedelta(seconds=1))
    assert tasks.clearance_link_catch_up() == 1
    task = ClearanceTask.objects.get(appeal=appeal)
    assert ClearanceLink.objects.filter(task=task).count() == 1
    assert SmsMessage.objects.filter(purpose="clearance_confirm").count() == 1
    assert not ClearanceTask.objects.filter(appeal=closed).exists()
    assert tasks.clearance_link_catch_up() == 0
