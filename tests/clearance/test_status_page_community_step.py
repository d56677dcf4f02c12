"""The resident's appeal status page shows the community's step: the link sent, their
confirmation, and after a rejection what to do next; never the community's calls or notes."""

import pytest
from django.urls import reverse

from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def _status(client, appeal):
    phone = appeal.resident.phones.first().reveal_phone()
    return client.post(reverse("appeals:status"), {
        "reference": appeal.reference, "id_number": appeal.resident.reveal_id_number(), "phone": phone,
    })


def test_status_page_shows_the_link_then_the_rejection_and_next_step(client, sms_outbox, settings):
    settings.LANGUAGE_CODE = "en"
    # given an appeal routed to the community, with its clearance task and link
    appeal = RoutedAppealFactory()
    worker = WorkerFactory(communities=[appeal.routed_community])
    task = services.clearance_open_for_appeal(appeal=appeal)
    services.clearance_call_log(task=task, actor=worker, direction="outbound", outcome="no_answer",
                                note="internal note about the call")

    # when the resident looks up the appeal
    page = _status(client, appeal).content.decode()

    # then they see the community step and the link, not the worker's call note
    assert 'id="community-step"' in page and "Waiting for the resident" in page
    assert "Your community sent you an SMS link to confirm your details." in page
    assert "nobody will ask you for money" in page
    assert "internal note about the call" not in page

    # when the community rejects with a next step
    services.clearance_reject(task=task, actor=worker, reason="Travel record shows a stay in a risk county.",
                              next_step=ClearanceTask.NextStep.WAIT_7_DAYS)
    page = _status(client, appeal).content.decode()

    # then the status page says what to do next
    assert "Rejected" in page
    assert "Stay 7 days in a place without cases, then apply again" in page
    assert "Travel record shows a stay in a risk county." in page


def test_status_page_without_a_community_step_has_no_section(client):
    appeal = RoutedAppealFactory()

    page = _status(client, appeal).content.decode()

    assert 'id="community-step"' not in page
