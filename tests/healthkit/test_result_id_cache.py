"""Result ids come to each session in blocks (migration 0036), so that a batch's COPY does not
take the shared sequence's lock 10,000 times; ids stay unique across sessions."""

import psycopg
import pytest
from django.db import connection

from tests.factories import ResidentFactory

pytestmark = pytest.mark.django_db(transaction=True)

_INSERT = ("INSERT INTO healthkit_testresult (resident_id, lab, sample_id, sampled_at, resulted_at, result, "
           "from_other_province, received_at) SELECT %s, 'lab-1', 'S' || g, now(), now(), 'negative', false, now() "
           "FROM generate_series(%s, %s) g RETURNING id")


def test_result_ids_come_in_blocks_per_session_and_never_repeat():
    with connection.cursor() as cursor:
        cursor.execute("SELECT seqcache FROM pg_sequence "
                       "WHERE seqrelid = pg_get_serial_sequence('healthkit_testresult', 'id')::regclass")
        assert cursor.fetchone()[0] >= 1000
    resident = ResidentFactory()
    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        ids: list[int] = []
        for start in (1, 101, 201):  # two sessions, interleaved
            with connection.cursor() as cursor:
                cursor.execute(_INSERT, [resident.pk, start, start + 49])
                ids += [row[0] for row in cursor.fetchall()]
            ids += [row[0] for row in other.execute(_INSERT, [resident.pk, start + 50, start + 99]).fetchall()]
    finally:
        other.close()
    assert len(ids) == len(set(ids)) == 300
