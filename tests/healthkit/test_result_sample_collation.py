"""A result's lab and sample id are compared byte by byte (collation "C", migration 0031): every
result written walks the unique key (lab, sample id, resident), and any other collation sends
each comparison through the locale. Idempotency and corrections work as before on them."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from healthkit import ingest
from healthkit.models import TestResult
from tests.factories import ResidentFactory

pytestmark = pytest.mark.django_db


def test_the_result_key_columns_and_the_unique_index_use_the_c_collation():
    # given the result table as migrated
    with connection.cursor() as cursor:
        # when its columns' collations are read
        cursor.execute("SELECT a.attname, c.collname FROM pg_attribute a LEFT JOIN pg_collation c "
                       "ON c.oid = a.attcollation WHERE a.attrelid = 'healthkit_testresult'::regclass "
                       "AND a.attname IN ('lab', 'sample_id', 'result')")
        columns = dict(cursor.fetchall())
        # and those the unique key compares its texts with
        cursor.execute("SELECT c.collname FROM pg_index i, unnest(i.indcollation) WITH ORDINALITY k(coll, n) "
                       "LEFT JOIN pg_collation c ON c.oid = k.coll "
                       "WHERE i.indexrelid = 'result_unique_current_sample'::regclass ORDER BY k.n")
        index = [name for (name,) in cursor.fetchall()]
    # then lab and sample id are "C" (the result's outcome keeps the database default), and so is the key
    assert columns == {"lab": "C", "sample_id": "C", "result": "default"}
    assert index == ["C", "C", None]


def test_sample_ids_differing_only_in_case_or_accents_are_distinct_and_a_retry_is_a_duplicate():
    # given a resident and results whose sample ids a linguistic collation would sort together
    resident = ResidentFactory()
    now = timezone.now()

    def record(sample_id: str, result: str = "negative") -> dict:
        return {"id_number": resident.reveal_id_number(), "lab": "Lab-Ä", "sample_id": sample_id, "result": result,
                "sampled_at": (now - dt.timedelta(hours=3)).isoformat(),
                "resulted_at": (now - dt.timedelta(hours=1)).isoformat()}

    samples = ["s-1", "S-1", "s-é", "s-e"]
    # when they are ingested, then sent again with one corrected
    first = ingest.ingest(kind="test_results", records=[record(s) for s in samples], evaluate=False)
    again = ingest.ingest(kind="test_results", records=[record(s) for s in samples[:3]] + [record("s-e", "positive")],
                          evaluate=False)
    # then each is its own sample; the retries are duplicates and the changed one a correction
    assert (first.accepted, first.duplicates) == (4, 0)
    assert (again.accepted, again.duplicates, again.corrected) == (0, 3, 1)
    current = TestResult.objects.filter(superseded_at__isnull=True)
    assert sorted(current.values_list("sample_id", "result")) == [
        ("S-1", "negative"), ("s-1", "negative"), ("s-e", "positive"), ("s-é", "negative")]
    # and the database orders them by code point, as Python does
    assert list(current.order_by("sample_id").values_list("sample_id", flat=True)) == sorted(samples)
