"""A large batch of results in a transaction of its own streams (healthkit.ingest._streamed_rows):
both passes a chunk at a time, the residents looked up on a second connection while the COPY
runs on the first. It must give the same answer and the same rows as the one-connection way,
keep the resident reference (a pending delete waits, then the record is rejected), and never
run inside a caller's transaction, whose uncommitted changes the second connection cannot see.
The chunk sizes are made small here so that a few records make several chunks."""

import datetime as dt
import multiprocessing
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from communities import pii
from communities.models import Resident
from healthkit import ingest
from healthkit.models import TestResult
from tests.factories import ResidentFactory, make_id_number

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("small_ingest_chunks")]


@pytest.fixture
def streams(monkeypatch) -> list[int]:
    """Counts the batches that took the streamed way."""
    calls: list[int] = []
    streamed = ingest._streamed_rows
    monkeypatch.setattr(ingest, "_streamed_rows", lambda *a, **k: calls.append(1) or streamed(*a, **k))
    return calls


def _result(id_number, sample_id, *, lab="lab-1", hours_ago=10, result="negative", **extra):
    now = timezone.now()
    return {"id_number": id_number, "lab": lab, "sample_id": sample_id,
            "sampled_at": (now - dt.timedelta(hours=hours_ago)).isoformat(),
            "resulted_at": (now - dt.timedelta(hours=hours_ago - 2)).isoformat(), "result": result, **extra}


def _rows() -> list[tuple]:
    """The result table, residents named by keyed hash (ids differ between two runs)."""
    return sorted((h, lab, sample, outcome, superseded is None) for h, lab, sample, outcome, superseded in
                  TestResult.objects.values_list("resident__id_hash", "lab", "sample_id", "result", "superseded_at"))


class _Rollback(Exception):
    pass


def test_a_streamed_batch_gives_the_same_answer_and_rows_as_one_connection(streams):
    # given residents, one result on record, and a batch of every kind of record
    a, b = make_id_number(), make_id_number()
    ResidentFactory(id_number=a), ResidentFactory(id_number=b)
    newcomer, stranger = make_id_number(region="110108"), make_id_number(region="110109")
    ingest.ingest(kind="test_results", records=[_result(a, "ON-RECORD")], evaluate=False)
    records = [
        _result(a, "S1"),
        _result(b, "S2", result="positive"),
        _result(newcomer, "N1"),                             # unknown so far: registered by the next record's name
        _result(a, "ON-RECORD"),                             # on record: the COPY fails, the staging way decides
        _result(stranger, "X1"),                             # unknown, no name: rejected
        _result(b, "S2", result="negative"),                 # the lab's correction within the batch
        _result(newcomer, "N2", name="新来的"),
        _result("110105196001010018", "BAD-ID"),             # wrong check digit
        _result(a, "S3", result="maybe"),                    # bad field
        "not a record",
        _result(b, "S2", result="negative"),                 # a repeat of the correction
        _result(a, "S1"),                                    # a repeat
        _result(newcomer, "N1", lab="lab-2"),
    ]

    # when the batch runs the one-connection way (inside a transaction: no streaming), rolled back
    with pytest.raises(_Rollback), transaction.atomic():
        single = ingest.ingest(kind="test_results", records=records, evaluate=False).as_response()
        single_rows = _rows()
        raise _Rollback
    assert streams == []
    # and then the streamed way
    streamed = ingest.ingest(kind="test_results", records=records, evaluate=False).as_response()

    # then the answer and the rows are the same
    assert streams == [1]
    assert streamed == single
    assert _rows() == single_rows
    assert (streamed["accepted"], streamed["corrected"], streamed["duplicates"]) == (5, 1, 3)
    assert [r["index"] for r in streamed["rejected"]] == [4, 7, 8, 9]
    assert Resident.objects.filter(id_hash=pii.id_hash(newcomer), name="新来的").exists()
    assert not Resident.objects.filter(id_hash=pii.id_hash(stranger)).exists()


def test_a_streamed_batch_queues_evaluation_of_the_residents_it_wrote(streams):
    residents = [ResidentFactory(id_number=make_id_number()) for _ in range(5)]
    records = [_result(r.reveal_id_number(), f"S{n}") for n, r in enumerate(residents)]
    result = ingest.ingest(kind="test_results", records=records, evaluate=False)
    assert streams == [1]
    assert result.resident_ids == sorted(r.pk for r in residents)
    assert TestResult.objects.count() == 5


def test_streamed_ingest_while_a_resident_delete_is_pending_waits_then_rejects_the_record(streams):
    # given a transaction deleting a resident, not committed yet
    gone, kept = ResidentFactory(id_number=make_id_number()), ResidentFactory(id_number=make_id_number())
    records = [_result(kept.reveal_id_number(), "K1"), _result(gone.reveal_id_number(), "G1"),
               _result(kept.reveal_id_number(), "K2"), _result(gone.reveal_id_number(), "G2")]
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = ingest.ingest(kind="test_results", records=records, evaluate=False)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc
        finally:
            ingest.close_lookup_connection()
            connection.close()

    other = connection.get_new_connection(connection.get_connection_params())
    other.autocommit = True
    with other:
        other.execute("BEGIN")
        other.execute("DELETE FROM communities_residentphone WHERE resident_id = %s", [gone.pk])
        other.execute("DELETE FROM communities_resident WHERE id = %s", [gone.pk])
        # when a batch with results for that resident comes in
        writer = threading.Thread(target=run)
        writer.start()
        writer.join(0.5)
        assert writer.is_alive()  # it waits for the deleting transaction
        other.execute("COMMIT")
        writer.join(30)
    # then the deleted resident's records are rejected, the others kept, none names the deleted one
    assert "error" not in outcome, outcome
    assert streams == [1]
    assert outcome["result"].accepted == 2
    assert [(r["index"], list(r["errors"])) for r in outcome["result"].rejected] == [(1, ["id_number"]),
                                                                                    (3, ["id_number"])]
    assert sorted(TestResult.objects.values_list("sample_id", flat=True)) == ["K1", "K2"]


def test_no_streaming_inside_a_callers_transaction_which_the_second_connection_cannot_see(streams):
    # given a transaction that has deleted a resident (not committed: another session still sees them)
    gone, kept = ResidentFactory(id_number=make_id_number()), ResidentFactory(id_number=make_id_number())
    records = [_result(kept.reveal_id_number(), f"K{n}") for n in range(3)] + [_result(gone.reveal_id_number(), "G1")]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM communities_residentphone WHERE resident_id = %s", [gone.pk])
        Resident.objects.filter(pk=gone.pk).delete()
        # when a large batch is ingested in that transaction
        result = ingest.ingest(kind="test_results", records=records, evaluate=False)
    # then it does not stream, and the deleted resident's record names no resident
    assert streams == []
    assert result.accepted == 3
    assert [r["index"] for r in result.rejected] == [3]
    assert not TestResult.objects.filter(resident_id=gone.pk).exists()


def test_the_look_up_connection_is_reopened_after_the_server_ended_it(streams):
    resident = ResidentFactory(id_number=make_id_number())
    number = resident.reveal_id_number()
    ingest.ingest(kind="test_results", records=[_result(number, f"A{n}") for n in range(4)], evaluate=False)
    first = ingest._lookups.connection
    with connection.cursor() as cursor:  # the server ends that idle session (a restart, an idle timeout)
        cursor.execute("SELECT pg_terminate_backend(%s)", [first.info.backend_pid])
    result = ingest.ingest(kind="test_results", records=[_result(number, f"B{n}") for n in range(4)],
                           evaluate=False)
    assert result.accepted == 4 and streams == [1, 1]
    assert ingest._lookups.connection is not first and first.closed


def _child_opens_its_own(parent_pid: int, out) -> None:
    mine = ingest._lookup_connection()
    out.put((mine.info.backend_pid != parent_pid, mine.execute("SELECT 1").fetchone()[0]))
    mine.close()


def test_a_forked_process_opens_its_own_look_up_connection_and_leaves_the_parents(streams):
    # given a process whose look-up connection is open
    resident = ResidentFactory(id_number=make_id_number())
    ingest.ingest(kind="test_results", records=[_result(resident.reveal_id_number(), f"A{n}") for n in range(4)],
                  evaluate=False)
    parent = ingest._lookups.connection
    # when a forked child asks for one
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_opens_its_own, args=(parent.info.backend_pid, out))
    child.start()
    child.join(30)
    # then the child used a session of its own, and the parent's still answers
    assert child.exitcode == 0 and out.get(timeout=5) == (True, 1)
    assert parent.execute("SELECT 1").fetchone()[0] == 1
    assert ingest._lookup_connection() is parent


@pytest.mark.parametrize("retried", [False, True], ids=["every row new", "one result on record"])
def test_a_streamed_batch_records_evaluation_of_exactly_the_residents_it_wrote(streams, monkeypatch, retried):
    # The work is prepared while the server finishes the COPY; a COPY that fails on a result
    # already on record must not leave that preparation behind (its resident wrote nothing new).
    from healthkit import engine_work

    residents = [ResidentFactory(id_number=make_id_number()) for _ in range(5)]
    if retried:
        ingest.ingest(kind="test_results", records=[_result(residents[0].reveal_id_number(), "S0")], evaluate=False)
    recorded: list[list[int]] = []
    write = engine_work.evaluate_later
    monkeypatch.setattr(engine_work, "evaluate_later", lambda ids=(), *, work=None: (
        recorded.append(list(work.resident_ids if work is not None else engine_work.prepare(ids).resident_ids)),
        write(ids, work=work))[1])
    records = [_result(r.reveal_id_number(), f"S{n}") for n, r in enumerate(residents)]
    records.append(_result(residents[1].reveal_id_number(), "S9"))  # a second result of one resident

    result = ingest.ingest(kind="test_results", records=records)

    assert streams == [1]
    wrote = sorted(r.pk for r in residents[1 if retried else 0:])
    assert recorded == [wrote]
    assert result.resident_ids == wrote
    assert (result.accepted, result.duplicates) == (5 if retried else 6, 1 if retried else 0)
