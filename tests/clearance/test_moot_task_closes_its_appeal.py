"""A popup lifted or withdrawn by other means (the engine, a lab result) closes its open task in
the measures sweep, and the appeal that task held closes with it as "lifted": it no longer sits
"with the community" in the hotline's queue, and the resident is texted once (the popup's news)."""

import pytest
from django.utils import timezone

from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from appeals.models import Appeal, AppealEvent
from healthkit.models import PopupCase, SmsMessage
from tests.factories import PopupCaseFactory
from tests.factories.clearance import RoutedAppealFactory

pytestmark = pytest.mark.django_db


def test_the_sweep_closes_the_task_and_its_appeal_without_an_sms_of_its_own():
    appeal = RoutedAppealFactory(popup=None)
    appeal.popup = PopupCaseFactory(resident=appeal.resident, popup_type=1)
    appeal.save(update_fields=["popup"])
    task = services.clearance_open_for_appeal(appeal=appeal)
    PopupCase.objects.filter(pk=appeal.popup_id).update(state=PopupCase.State.LIFTED, lifted_at=timezone.now())
    before = SmsMessage.objects.count()

    services.clearance_measures_sweep()
    services.clearance_measures_sweep()  # a rerun changes nothing

    task.refresh_from_db()
    appeal.refresh_from_db()
    assert task.state == ClearanceTask.State.CLOSED
    assert (appeal.status, appeal.outcome) == (Appeal.Status.CLOSED, "lifted") and appeal.closed_at
    kinds = list(AppealEvent.objects.filter(appeal=appeal, kind__in=["status_changed", "closed"])
                 .order_by("id").values_list("kind", "data"))
    assert kinds[-2:] == [("status_changed", {"from": "routed", "to": "closed"}), ("closed", {"outcome": "lifted"})]
    assert SmsMessage.objects.count() == before


def test_an_appeal_already_closed_is_left_as_it_was():
    appeal = RoutedAppealFactory(popup=None)
    appeal.popup = PopupCaseFactory(resident=appeal.resident, popup_type=1)
    appeal.save(update_fields=["popup"])
    services.clearance_open_for_appeal(appeal=appeal)
    Appeal.objects.filter(pk=appeal.pk).update(status=Appeal.Status.CLOSED, outcome="duplicate",
                                               closed_at=timezone.now())
    PopupCase.objects.filter(pk=appeal.popup_id).update(state=PopupCase.State.LIFTED, lifted_at=timezone.now())

    services.clearance_measures_sweep()

    assert Appeal.objects.get(pk=appeal.pk).outcome == "duplicate"
