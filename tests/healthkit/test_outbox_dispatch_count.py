"""One dispatch enqueues one delivery task per endpoint with due rows, however many rows are
due (a task per row flooded the queue: 28,001 tasks for 2,872 deliveries in one run)."""

from unittest import mock

import pytest
from django.utils import timezone

from healthkit import outbox, tasks
from healthkit.models import OutboxDelivery, OutboxRecord
from tests.factories import PopupCaseFactory
from tests.factories.healthkit import DownstreamEndpointFactory

pytestmark = pytest.mark.django_db


def _due_rows(endpoints, n):
    for _ in range(n):
        case = PopupCaseFactory()
        record = OutboxRecord.objects.create(idempotency_key=f"popup-{case.pk}-raised", kind="raised", case=case,
                                             resident_id=case.resident_id, popup_type=case.popup_type,
                                             at=timezone.now(), payload={})
        OutboxDelivery.objects.bulk_create(
            OutboxDelivery(record=record, endpoint=e, resident_id=case.resident_id) for e in endpoints)


def test_one_task_per_endpoint_not_per_row():
    rail = DownstreamEndpointFactory(name="rail", url="http://127.0.0.1:9/rail")
    air = DownstreamEndpointFactory(name="air", url="http://127.0.0.1:9/air")
    idle = DownstreamEndpointFactory(name="idle", url="http://127.0.0.1:9/idle")
    _due_rows([rail, air], 12)
    assert sorted(outbox.endpoints_with_due_rows()) == sorted([rail.pk, air.pk])
    with mock.patch.object(tasks.outbox_deliver_endpoint, "delay") as delay:
        tasks.outbox_dispatch_due()
    assert sorted(c.args[0] for c in delay.call_args_list) == sorted([rail.pk, air.pk])
    assert idle.pk not in outbox.endpoints_with_due_rows()
