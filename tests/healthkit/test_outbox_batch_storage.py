"""A batch record's id arrays are written uncompressed (migration 0028): compressing 50 k ids
was most of the cost of the exposure job's batch record. They read back whole and in order."""

import pytest
from django.db import connection
from django.utils import timezone

from healthkit.models import OutboxRecord

pytestmark = pytest.mark.django_db


def test_a_large_batch_keeps_its_ids_uncompressed_and_reads_them_back_in_order():
    # given a batch of 5,000 popups (arrays far above the size PostgreSQL would compress)
    case_ids = list(range(1_000_001, 1_005_001))
    resident_ids = [i * 7 % 100_003 for i in case_ids]
    record = OutboxRecord.objects.create(idempotency_key="window-1-v1-raised", kind="raised", popup_type=3,
                                         at=timezone.now(), payload={}, case_ids=case_ids,
                                         resident_ids=resident_ids)
    # when it is stored
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(case_ids), pg_column_compression(resident_ids), "
                       "pg_column_size(case_ids) FROM healthkit_outboxrecord WHERE id = %s", [record.pk])
        case_compression, resident_compression, size = cursor.fetchone()
    # then neither array is compressed (they are moved out of line whole)
    assert (case_compression, resident_compression) == (None, None)
    assert size >= 8 * len(case_ids)
    # and both read back as written
    stored = OutboxRecord.objects.get(pk=record.pk)
    assert stored.case_ids == case_ids and stored.resident_ids == resident_ids
    assert stored.pages == 1
