"""The same batch id sent twice at the same moment (a lab's client retrying on a timeout while
the first request is still running) is stored once: the second request waits for the first,
then replays its answer; if the first rolled back, the second stores the batch itself."""

import datetime as dt
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from healthkit import ingest
from healthkit.models import IngestBatch, TestResult
from tests.factories import ResidentFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _records(resident, n=3):
    now = timezone.now()
    return [{"id_number": resident.reveal_id_number(), "lab": "某检测所", "sample_id": f"S{i}",
             "sampled_at": (now - dt.timedelta(hours=3)).isoformat(),
             "resulted_at": (now - dt.timedelta(hours=1)).isoformat(), "result": "negative"} for i in range(n)]


def _first_request_held_open(records, *, roll_back: bool):
    """Run the first request in a thread whose transaction stays open until released."""
    inside, release, answers = threading.Event(), threading.Event(), []

    def first():
        try:
            with transaction.atomic():
                answers.append(ingest.ingest(kind="test_results", records=records, batch_id="b-1", evaluate=False))
                inside.set()
                release.wait(10)
                if roll_back:
                    transaction.set_rollback(True)
        finally:
            inside.set()
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(10)
    return thread, release, answers


def _second_request_meanwhile(records):
    answers = []

    def second():
        try:
            answers.append(ingest.ingest(kind="test_results", records=records, batch_id="b-1", evaluate=False))
        finally:
            connection.close()

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive()  # waiting for the first request's row
    return thread, answers


@pytest.mark.parametrize("roll_back", [False, True])
def test_the_same_batch_id_at_once_is_stored_once(roll_back):
    records = _records(ResidentFactory())
    first, release, first_answer = _first_request_held_open(records, roll_back=roll_back)
    second, second_answer = _second_request_meanwhile(records)
    release.set()
    first.join(10)
    second.join(10)
    assert first_answer[0].accepted == 3 and not first_answer[0].replayed
    if roll_back:  # the first never happened: the second stored the batch
        assert not second_answer[0].replayed and second_answer[0].accepted == 3
    else:  # the second replays the first's answer and writes nothing
        assert second_answer[0].replayed and second_answer[0].accepted == 3 and second_answer[0].duplicates == 0
    assert IngestBatch.objects.count() == 1
    assert IngestBatch.objects.get().accepted == 3
    assert TestResult.objects.count() == 3
