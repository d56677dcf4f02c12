"""A test result always names an existing resident, and a resident with results cannot be deleted:
held by set-wise triggers (migration 0016) instead of a row-by-row foreign key, for every writer
(ORM, COPY, raw SQL), also against a transaction still writing results. The ingest holds its
residents by a lock taken before it looks them up and skips the per-statement check for its own
rows (migration 0022): the same guarantees."""

import datetime as dt
import threading

import psycopg
import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from communities.models import Resident
from healthkit import ingest
from healthkit.models import TestResult
from tests.factories import ResidentFactory, TestResultFactory, make_id_number

pytestmark = pytest.mark.django_db


def _other_session() -> psycopg.Connection:
    """A second session on the test database, connected as Django connects."""
    other = connection.get_new_connection(connection.get_connection_params())
    other.autocommit = True
    return other


def _missing_resident_id() -> int:
    return (Resident.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


def test_result_for_a_resident_that_does_not_exist_is_refused():
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        TestResult.objects.create(resident_id=_missing_resident_id(), lab="L", sample_id="S1", sampled_at=now,
                                  resulted_at=now, received_at=now, result="negative")
    assert not TestResult.objects.exists()


def test_copy_of_many_results_with_one_unknown_resident_stores_none():
    resident, now = ResidentFactory(), timezone.now()
    rows = [(resident.pk, "L", f"S{i}", now, now, now, "negative", False) for i in range(50)]
    rows.append((_missing_resident_id(), "L", "S-bad", now, now, now, "negative", False))
    with pytest.raises(psycopg.errors.ForeignKeyViolation), transaction.atomic(), connection.cursor() as cursor, \
            cursor.cursor.copy(
        "COPY healthkit_testresult (resident_id, lab, sample_id, sampled_at, resulted_at, received_at, result, "
        "from_other_province) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)
    assert not TestResult.objects.exists()


def test_moving_a_result_to_a_resident_that_does_not_exist_is_refused():
    result = TestResultFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        TestResult.objects.filter(pk=result.pk).update(resident_id=_missing_resident_id())
    result.refresh_from_db()
    assert Resident.objects.filter(pk=result.resident_id).exists()


def test_resident_with_results_cannot_be_deleted_by_the_orm_or_by_sql():
    result = TestResultFactory()
    with pytest.raises(ProtectedError):
        result.resident.delete()
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM communities_resident WHERE id = %s", [result.resident_id])
    assert Resident.objects.filter(pk=result.resident_id).exists()


def test_resident_without_results_can_be_deleted():
    resident = ResidentFactory()
    TestResultFactory()  # someone else's result
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM communities_residentphone WHERE resident_id = %s", [resident.pk])
        cursor.execute("DELETE FROM communities_resident WHERE id = %s", [resident.pk])
    assert not Resident.objects.filter(pk=resident.pk).exists()


def test_new_resident_whose_every_record_is_rejected_is_taken_back_and_the_rest_kept():
    kept, dropped = make_id_number(), make_id_number()
    now = timezone.now()
    good = {"id_number": kept, "name": "李四", "lab": "L", "sample_id": "S1",
            "sampled_at": (now - dt.timedelta(hours=3)).isoformat(),
            "resulted_at": (now - dt.timedelta(hours=1)).isoformat(), "result": "negative"}
    bad = {**good, "id_number": dropped, "name": "张三", "sample_id": "S2", "result": "maybe"}
    result = ingest.ingest(kind="test_results", records=[good, bad], evaluate=False)
    assert result.accepted == 1 and [r["index"] for r in result.rejected] == [1]
    assert Resident.objects.filter(name="李四").exists()
    assert not Resident.objects.filter(name="张三").exists()
    assert TestResult.objects.get().resident.name == "李四"


@pytest.mark.django_db(transaction=True)
def test_delete_waits_for_a_transaction_writing_results_and_then_refuses():
    resident = ResidentFactory()
    now = timezone.now()
    with _other_session() as other:
        with transaction.atomic():
            TestResult.objects.create(resident=resident, lab="L", sample_id="S1", sampled_at=now, resulted_at=now,
                                      received_at=now, result="negative")
            # not committed yet: the delete cannot see the result, so it must wait for this transaction
            other.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM communities_resident WHERE id = %s", [resident.pk])
        # committed: the delete now sees the result and refuses
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            other.execute("DELETE FROM communities_resident WHERE id = %s", [resident.pk])
    assert Resident.objects.filter(pk=resident.pk).exists()
    assert TestResult.objects.filter(resident=resident).count() == 1


@pytest.mark.django_db(transaction=True)
def test_result_written_while_a_delete_is_pending_waits_and_is_then_refused():
    resident = ResidentFactory()
    now = timezone.now()

    def write():
        with transaction.atomic():
            TestResult.objects.create(resident_id=resident.pk, lab="L", sample_id="S1", sampled_at=now,
                                      resulted_at=now, received_at=now, result="negative")

    with _other_session() as other:
        other.execute("BEGIN")
        other.execute("DELETE FROM communities_residentphone WHERE resident_id = %s", [resident.pk])
        other.execute("DELETE FROM communities_resident WHERE id = %s", [resident.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        with pytest.raises(OperationalError):  # waits for the deleting transaction
            write()
        other.execute("COMMIT")
        with pytest.raises(IntegrityError):  # the resident is gone
            write()
    assert not TestResult.objects.exists()


def _result_record(id_number: str, sample_id: str = "S1") -> dict:
    now = timezone.now()
    return {"id_number": id_number, "lab": "L", "sample_id": sample_id,
            "sampled_at": (now - dt.timedelta(hours=3)).isoformat(),
            "resulted_at": (now - dt.timedelta(hours=1)).isoformat(), "result": "negative"}


def test_results_written_after_an_ingest_in_the_same_transaction_are_checked_again():
    # given an ingest of a good result, then a write naming a missing resident, one transaction
    resident = ResidentFactory(id_number=make_id_number())
    with pytest.raises(IntegrityError), transaction.atomic():
        result = ingest.ingest(kind="test_results", records=[_result_record(resident.reveal_id_number())],
                               evaluate=False)
        assert result.accepted == 1
        TestResult.objects.create(resident_id=_missing_resident_id(), lab="L", sample_id="S2",
                                  sampled_at=timezone.now(), resulted_at=timezone.now(),
                                  received_at=timezone.now(), result="negative")
    # then the write is refused (and the transaction with it)
    assert not TestResult.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_ingest_while_a_resident_delete_is_pending_waits_then_rejects_the_record():
    # given a transaction deleting a resident, not committed yet
    resident = ResidentFactory(id_number=make_id_number())
    record = _result_record(resident.reveal_id_number())
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = ingest.ingest(kind="test_results", records=[record], evaluate=False)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc
        finally:
            connection.close()

    with _other_session() as other:
        other.execute("BEGIN")
        other.execute("DELETE FROM communities_residentphone WHERE resident_id = %s", [resident.pk])
        other.execute("DELETE FROM communities_resident WHERE id = %s", [resident.pk])
        # when a batch with a result for that resident comes in
        writer = threading.Thread(target=run)
        writer.start()
        writer.join(0.5)
        assert writer.is_alive()  # it waits for the deleting transaction
        other.execute("COMMIT")
        writer.join(30)
    # then the record is rejected as naming no resident, and no result names the deleted one
    assert "error" not in outcome, outcome
    assert outcome["result"].accepted == 0
    assert [list(r["errors"]) for r in outcome["result"].rejected] == [["id_number"]]
    assert not TestResult.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_resident_delete_while_an_ingest_is_open_waits_then_refuses():
    # given an ingest that has written a resident's result, not committed yet
    resident = ResidentFactory(id_number=make_id_number())
    with _other_session() as other:
        with transaction.atomic():
            result = ingest.ingest(kind="test_results", records=[_result_record(resident.reveal_id_number())],
                                   evaluate=False)
            assert result.accepted == 1
            # when the resident is deleted meanwhile, it waits for the batch
            other.execute("SET lock_timeout = '300ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM communities_resident WHERE id = %s", [resident.pk])
        # then, the batch committed, the delete sees its result and refuses
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            other.execute("DELETE FROM communities_resident WHERE id = %s", [resident.pk])
    assert TestResult.objects.filter(resident=resident).count() == 1
