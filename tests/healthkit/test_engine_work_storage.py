"""A pending evaluation's residents are written uncompressed (migration 0030): a batch of
10,000 results writes ten rows of 1,000 ids inside its transaction, and compressing them with
pglz was a large part of the batch's database time. They read back whole and in order, and the
task that takes them still finds its own row."""

from unittest import mock

import pytest
from django.db import connection

from healthkit import engine_work, queues
from healthkit.models import EngineWork

pytestmark = pytest.mark.django_db


def test_a_batchs_pending_evaluations_are_stored_uncompressed_and_taken_whole():
    # given the residents of a large batch, numbered in sequence (the most compressible case)
    ids = list(range(500_001, 502_001))
    # when their evaluation is recorded
    with mock.patch.object(queues, "publish_on_commit") as publish:
        engine_work.evaluate_later(list(reversed(ids)))
    # then one row per task of 1,000 residents, neither compressed (moved out of line whole)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_column_compression(resident_ids), pg_column_size(resident_ids) "
                       "FROM healthkit_enginework ORDER BY id")
        stored = cursor.fetchall()
    assert [compression for compression, _size in stored] == [None, None]
    assert all(size >= 8 * engine_work.CHUNK for _compression, size in stored)
    # and they read back as written, in order, one task's residents each
    rows = list(EngineWork.objects.order_by("id").values_list("resident_ids", flat=True))
    assert rows == [ids[:1_000], ids[1_000:]]
    work_ids = list(EngineWork.objects.order_by("id").values_list("id", flat=True))
    assert publish.call_args.args[1] == [(work_ids,)]  # one message naming both rows
    # and a task takes exactly its own row
    with mock.patch("healthkit.engine.evaluate") as evaluate:
        assert engine_work.evaluate_work(work_id=work_ids[1]) == 1_000
    evaluate.assert_called_once_with(resident_ids=ids[1_000:])
    assert list(EngineWork.objects.values_list("resident_ids", flat=True)) == [ids[:1_000]]
