"""The gateway's delivery receipts: a sent SMS becomes delivered or not delivered (set-wise,
idempotent, errors by index), and the worker sees it on the task, with a prompt to call when
the resident did not get it."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from appeals.clearance.models import ClearanceTask
from appeals.clearance.tasks import clearance_open_for_appeal
from healthkit.models import SmsMessage
from healthkit.sms import sms_receipts_record
from tests.factories import UserFactory
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(sms_outbox, django_capture_on_commit_callbacks):
    appeal = RoutedAppealFactory()
    with django_capture_on_commit_callbacks(execute=True):
        clearance_open_for_appeal.delay(appeal.pk)
    message = SmsMessage.objects.get(purpose="clearance_confirm")
    assert message.state == SmsMessage.State.SENT and message.provider_id
    return appeal, message


def test_receipts_mark_delivery_once_and_report_bad_ones_by_index(sent):
    _appeal, message = sent
    out = sms_receipts_record([
        {"id": message.provider_id, "status": "delivered", "at": "2022-09-01T12:00:05+08:00"},
        {"id": "nobody-knows", "status": "delivered"},
        {"id": message.provider_id, "status": "maybe"},
        "not an object",
    ])
    assert (out["received"], out["recorded"], out["not_recorded"]) == (4, 1, ["nobody-knows"])
    assert [r["index"] for r in out["rejected"]] == [2, 3]
    message.refresh_from_db()
    assert message.state == SmsMessage.State.DELIVERED and message.delivered_at is not None
    again = sms_receipts_record([{"id": message.provider_id, "status": "undelivered", "error": "handset off"}])
    assert (again["recorded"], again["not_recorded"]) == (0, [message.provider_id])  # final: unchanged
    message.refresh_from_db()
    assert message.state == SmsMessage.State.DELIVERED


def test_undelivered_link_shows_on_the_task_with_a_prompt_to_call(sent, client):
    appeal, message = sent
    sms_receipts_record([{"id": message.provider_id, "status": "undelivered", "error": "number not in service"}])
    message.refresh_from_db()
    assert (message.state, message.last_error) == (SmsMessage.State.UNDELIVERED, "number not in service")
    client.force_login(WorkerFactory(communities=[appeal.routed_community]))
    task = ClearanceTask.objects.get(appeal=appeal)
    page = client.get(reverse("clearance:task", args=[task.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-state="undelivered"' in page and "call the resident" in page
    assert message.phone_masked in page


def test_the_receipt_api_takes_only_integration_clients(sent):
    _appeal, message = sent
    body = {"receipts": [{"id": message.provider_id, "status": "delivered"}]}
    staff = APIClient()
    staff.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=UserFactory(role='operator')).key}")
    assert staff.post(reverse("api-sms-receipts"), body, format="json").status_code == 403
    gateway = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    gateway.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=UserFactory(role='integration')).key}")
    response = gateway.post(reverse("api-sms-receipts"), body, format="json")
    assert response.status_code == 200 and response.json()["recorded"] == 1
    assert gateway.post(reverse("api-sms-receipts"), {"receipts": "x"}, format="json").status_code == 400
