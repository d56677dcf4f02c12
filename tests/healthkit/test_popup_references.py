"""A popup names an existing resident and policy, an event an existing popup, an exposure row an
existing window, resident and popup, an outbox record its popup and a delivery its record and
endpoint; none of these can be deleted (or change id) while referred to. Held by set-wise
triggers (healthkit 0023 and 0024, venues 0004) instead of row-by-row foreign keys, for every
writer (ORM and raw SQL)."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from healthkit import outbox
from healthkit.models import OutboxDelivery, OutboxRecord, PopupCase, PopupEvent, PopupPolicy
from tests.factories import PopupCaseFactory, ResidentFactory
from tests.factories.healthkit import DownstreamEndpointFactory
from tests.factories.venues import RiskWindowFactory
from venues.models import Exposure

pytestmark = pytest.mark.django_db


def _sql(statement: str, params: list) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


def _missing(model) -> int:
    return (model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


def test_popup_for_a_resident_or_policy_that_does_not_exist_is_refused():
    resident = ResidentFactory()
    fields = {"popup_type": 3, "source": "upstream", "raised_at": timezone.now()}
    with pytest.raises(IntegrityError), transaction.atomic():
        PopupCase.objects.create(resident_id=resident.pk + 1000, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        PopupCase.objects.create(resident=resident, policy_id=_missing(PopupPolicy), **fields)
    popup = PopupCaseFactory(resident=resident)
    with pytest.raises(IntegrityError), transaction.atomic():
        PopupCase.objects.filter(pk=popup.pk).update(resident_id=resident.pk + 1000)
    assert PopupCase.objects.get().resident_id == resident.pk


def test_event_for_a_popup_that_does_not_exist_is_refused_and_a_popup_with_events_stays():
    popup = PopupCaseFactory()
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        PopupEvent.objects.create(case_id=_missing(PopupCase), kind="note", at=now)
    PopupEvent.objects.create(case=popup, kind="note", at=now)
    with pytest.raises(IntegrityError):
        _sql("DELETE FROM healthkit_popupcase WHERE id = %s", [popup.pk])
    with pytest.raises(IntegrityError):
        _sql("UPDATE healthkit_popupcase SET id = id + 1000 WHERE id = %s", [popup.pk])
    popup.delete()  # the ORM cascades to the events first
    assert not PopupEvent.objects.exists()


def test_exposure_names_existing_rows_and_keeps_them():
    popup = PopupCaseFactory()
    window = RiskWindowFactory()
    now = timezone.now()
    row = {
        "window": window,
        "resident": popup.resident,
        "case": popup,
        "scanned_at": now,
        "raised_at": now,
    }
    for bad in (
        {"window_id": _missing(type(window))},
        {"case_id": _missing(PopupCase)},
        {"resident_id": popup.resident_id + 1000},
    ):
        fields = {
            k: v for k, v in row.items() if k not in {name.removesuffix("_id") for name in bad}
        }
        with pytest.raises(IntegrityError), transaction.atomic():
            Exposure.objects.create(**fields, **bad)
    exposure = Exposure.objects.create(**row)
    with pytest.raises(IntegrityError), transaction.atomic():
        Exposure.objects.filter(pk=exposure.pk).update(case_id=_missing(PopupCase))
    for table, pk in (
        ("venues_riskwindow", window.pk),
        ("healthkit_popupcase", popup.pk),
        ("communities_resident", popup.resident_id),
    ):
        with pytest.raises(IntegrityError):
            _sql(f"DELETE FROM {table} WHERE id = %s", [pk])  # noqa: S608 - constant names
    assert Exposure.objects.filter(pk=exposure.pk, case=popup, window=window).exists()


def test_rows_nothing_refers_to_can_be_deleted():
    resident = ResidentFactory()
    PopupCaseFactory()  # someone else's popup
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM communities_residentphone WHERE resident_id = %s", [resident.pk]
        )
        cursor.execute("DELETE FROM communities_resident WHERE id = %s", [resident.pk])
    assert not type(resident).objects.filter(pk=resident.pk).exists()


def test_outbox_rows_name_existing_rows_and_keep_them():
    popup = PopupCaseFactory()
    endpoint = DownstreamEndpointFactory()
    record = outbox.outbox_record(case=popup, kind="raised", at=timezone.now())
    delivery = OutboxDelivery.objects.get(record=record, endpoint=endpoint)
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboxDelivery.objects.create(
            record=record, endpoint_id=endpoint.pk + 1000, resident=popup.resident
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboxRecord.objects.filter(pk=record.pk).update(case_id=_missing(PopupCase))
    for table, pk in (
        ("healthkit_popupcase", popup.pk),
        ("healthkit_outboxrecord", record.pk),
        ("healthkit_downstreamendpoint", endpoint.pk),
    ):
        with pytest.raises(IntegrityError):
            _sql(f"DELETE FROM {table} WHERE id = %s", [pk])  # noqa: S608 - constant names
    assert OutboxDelivery.objects.filter(pk=delivery.pk, record__case=popup).exists()
