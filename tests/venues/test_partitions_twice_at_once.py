"""The partition job run twice at the same moment (two beats, a redelivered message): the
months are made once and neither run fails (it failed on PostgreSQL's catalogue with a
duplicate key, as two CREATE TABLE of one name do)."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from tests.concurrency import at_once
from venues import partitions

pytestmark = pytest.mark.django_db(transaction=True)


def test_partition_job_twice_at_once_makes_each_month_once():
    at = timezone.make_aware(dt.datetime(2031, 5, 15, 12))  # months no other test has made
    before = set(partitions.partition_names())

    results = at_once(lambda: partitions.scan_partitions_ensure(at=at, months_back=1, months_ahead=2),
                      lambda: partitions.scan_partitions_ensure(at=at, months_back=1, months_ahead=2))

    assert not [r for r in results if isinstance(r, Exception)], results
    made = sorted(set(partitions.partition_names()) - before)
    assert made == [f"venues_venuescan_2031{m:02d}" for m in (4, 5, 6, 7)]
    assert sorted(results[0] + results[1]) == made  # each month created by exactly one run

    for name in made:  # leave the database as found (a flush does not drop tables)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {name}")
