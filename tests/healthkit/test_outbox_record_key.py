"""One outbox record per popup change: unique by (popup, kind), its key `popup-<case>-<kind>`
held by the database; a batch's key is unique among batches and never looks like a popup's. The
engine's set-wise writer and the Python writer (`outbox_record`) then never double a record."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from healthkit import outbox
from healthkit.models import OutboxDelivery, OutboxRecord
from tests.factories import PopupCaseFactory
from tests.factories.healthkit import DownstreamEndpointFactory

pytestmark = pytest.mark.django_db


def _single(case, *, kind="raised", key=None):
    return OutboxRecord.objects.create(idempotency_key=key or f"popup-{case.pk}-{kind}", kind=kind, case=case,
                                       resident_id=case.resident_id, popup_type=case.popup_type,
                                       at=timezone.now(), payload={})


def _batch(key, cases):
    return OutboxRecord.objects.create(idempotency_key=key, kind="raised", popup_type=3, at=timezone.now(),
                                       payload={}, case_ids=[c.pk for c in cases],
                                       resident_ids=[c.resident_id for c in cases])


def test_outbox_record_twice_for_the_same_change_writes_one_record_and_one_delivery_per_endpoint():
    DownstreamEndpointFactory()
    case = PopupCaseFactory()

    first = outbox.outbox_record(case=case, kind="lifted", at=timezone.now(), policy="2022-02-12", rule="r")
    again = outbox.outbox_record(case=case, kind="lifted", at=timezone.now(), policy="2022-02-12", rule="r")

    assert again.pk == first.pk and first.idempotency_key == f"popup-{case.pk}-lifted"
    assert OutboxRecord.objects.filter(case=case).count() == 1
    assert OutboxDelivery.objects.filter(record=first).count() == 1


def test_second_record_of_the_same_popup_and_kind_is_refused():
    case = PopupCaseFactory()
    _single(case)

    with pytest.raises(IntegrityError), transaction.atomic():
        _single(case)


def test_single_record_whose_key_does_not_name_its_popup_is_refused():
    case, other = PopupCaseFactory(), PopupCaseFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        _single(case, key=f"popup-{other.pk}-raised")
    with pytest.raises(IntegrityError), transaction.atomic():
        _single(case, kind="lifted", key=f"popup-{case.pk}-raised")


def test_batch_keys_are_unique_and_never_a_popup_key():
    cases = [PopupCaseFactory(), PopupCaseFactory()]
    _batch("window-1-v1-raised", cases)

    with pytest.raises(IntegrityError), transaction.atomic():
        _batch("window-1-v1-raised", cases)
    with pytest.raises(IntegrityError), transaction.atomic():
        _batch(f"popup-{cases[0].pk}-raised", cases)
