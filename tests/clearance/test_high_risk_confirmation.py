"""A high-risk investigation outcome sends the resident to centralised quarantine: every channel
(console form and REST) must confirm it explicitly, and nothing is ordered until it is."""

import datetime as dt

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from appeals.clearance.models import ClearanceTask
from appeals.clearance.services import clearance_investigate
from healthkit import clock
from healthkit.errors import ApplicationError
from healthkit.models import HealthStatusOrder
from tests.factories import PopupCaseFactory
from tests.factories.clearance import ClearanceTaskFactory, WorkerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def task():
    popup = PopupCaseFactory(popup_type=3, raised_at=clock.now() - dt.timedelta(days=1))
    return ClearanceTaskFactory(resident=popup.resident, popup=popup)


def test_service_refuses_an_unconfirmed_high_risk_outcome(task):
    worker = WorkerFactory(communities=[task.community])
    with pytest.raises(ApplicationError) as refused:
        clearance_investigate(task=task, actor=worker, outcome=ClearanceTask.Outcome.HIGH_RISK, reason="密接")
    assert refused.value.extra == {"field": "confirm_high_risk"}
    assert not HealthStatusOrder.objects.filter(resident=task.resident).exists()
    task.refresh_from_db()
    assert task.state != ClearanceTask.State.MEASURES


def test_rest_api_needs_the_confirmation_too(client, task):
    worker = WorkerFactory(communities=[task.community])
    token = Token.objects.create(user=worker).key
    url = reverse("clearance:api-investigation", args=[task.pk])
    headers = {"HTTP_AUTHORIZATION": f"Token {token}", "HTTP_ACCEPT_LANGUAGE": "en"}

    refused = client.post(url, {"outcome": "high_risk", "reason": "密接"}, content_type="application/json", **headers)
    assert refused.status_code == 400 and "confirm" in refused.json()["detail"]
    assert not HealthStatusOrder.objects.filter(resident=task.resident).exists()

    done = client.post(url, {"outcome": "high_risk", "reason": "密接", "confirm_high_risk": True},
                       content_type="application/json", **headers)
    assert done.status_code == 200
    assert HealthStatusOrder.objects.get(resident=task.resident).status == "red"
