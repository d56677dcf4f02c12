"""An SLA escalation while a page is open is not a change of what the person decides on: the
worker's decision and the operator's close from that page go through, instead of being refused
as "changed since you opened the page" (the escalation itself stays recorded)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from appeals import services as appeal_services
from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceTask
from appeals.models import Appeal, AppealEvent
from communities.models import User
from tests.concurrency import page_seen, post_messages, signed_in
from tests.factories import PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.clearance import ClearanceTaskFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def test_a_worker_s_rejection_from_a_page_opened_before_the_escalation_goes_through():
    task = ClearanceTaskFactory()
    client = signed_in(WorkerFactory(communities=[task.community]))
    seen = page_seen(client, reverse("clearance:task", args=[task.pk]))

    assert services.clearance_sla_sweep(at=timezone.now() + dt.timedelta(days=2)) == 1
    post_messages(client, reverse("clearance:task-action", args=[task.pk, "reject"]), {
        "reason": "行程不符", "next_step": ClearanceTask.NextStep.WAIT_7_DAYS, **seen})

    task.refresh_from_db()
    assert task.state == ClearanceTask.State.REJECTED and task.escalated_at is not None
    assert task.events.filter(kind=ClearanceEvent.Kind.ESCALATED).count() == 1


def test_an_operator_s_close_from_a_page_opened_before_the_escalation_goes_through():
    resident = ResidentFactory()
    appeal, _folded = appeal_services.appeal_file(resident=resident, category="correction",
                                                  popup=PopupCaseFactory(resident=resident))
    client = signed_in(UserFactory(role=User.Role.OPERATOR))
    seen = page_seen(client, reverse("appeals:ticket", args=[appeal.pk]))

    assert appeal_services.appeal_sla_sweep(now=timezone.now() + dt.timedelta(days=2)) == 1
    client.post(reverse("appeals:ticket-action", args=[appeal.pk, "close"]),
                {"reason": "核实无误", "outcome": "other", **seen})

    appeal.refresh_from_db()
    assert appeal.status == Appeal.Status.CLOSED and appeal.escalated_at is not None
    assert appeal.events.filter(kind=AppealEvent.Kind.ESCALATED).count() == 1
