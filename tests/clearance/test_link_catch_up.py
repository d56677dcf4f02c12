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
