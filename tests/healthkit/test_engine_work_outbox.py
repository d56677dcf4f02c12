"""A committed batch reaches evaluation whatever happens to the broker or the task: the
"to evaluate" rows are written with the batch, the API answers 200 once the data is committed
even if the publish fails, and the every-minute job evaluates what no task took."""

import datetime as dt
from unittest import mock

import pytest
from django.db import OperationalError, transaction
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communities.models import User
from healthkit import engine, engine_work, tasks
from healthkit.models import EngineWork, PopupCase
from tests.factories import UserFactory
from tests.factories.healthkit import ArrivalFactory

pytestmark = pytest.mark.django_db


def _resident_with_popup_4():
    now = timezone.now()
    arrival = ArrivalFactory(arrived_at=now - dt.timedelta(days=4), received_at=now - dt.timedelta(days=4))
    engine.evaluate(resident_ids=[arrival.resident_id])
    assert PopupCase.objects.get(resident_id=arrival.resident_id).state == "active"
    return arrival.resident


def _negative(resident, sample_id="S1"):
    now = timezone.now()
    return {"id_number": resident.reveal_id_number(), "lab": "某检测所", "sample_id": sample_id,
            "sampled_at": (now - dt.timedelta(hours=3)).isoformat(),
            "resulted_at": (now - dt.timedelta(hours=1)).isoformat(), "result": "negative"}


def _client():
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    user = UserFactory(role=User.Role.INTEGRATION, username="lab-feed")
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _age_work():
    EngineWork.objects.update(created_at=timezone.now() - engine_work.GRACE - dt.timedelta(seconds=1))


def test_broker_down_at_commit_answers_200_and_the_sweep_lifts(django_capture_on_commit_callbacks):
    resident = _resident_with_popup_4()
    client = _client()
    body = {"batch_id": "b-1", "records": [_negative(resident)]}
    with mock.patch.object(tasks.engine_evaluate_work, "delay", side_effect=BrokerDown("refused")), \
            django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("api-ingest-test-results"), body, format="json")
    assert response.status_code == 200 and response.json()["accepted"] == 1
    assert list(EngineWork.objects.values_list("resident_ids", flat=True)) == [[resident.pk]]
    assert PopupCase.objects.get(resident=resident).state == "active"  # not evaluated yet
    # The client's retry replays the answer; the work is still on record.
    replay = client.post(reverse("api-ingest-test-results"), body, format="json")
    assert replay.json()["replayed"] is True and EngineWork.objects.count() == 1
    assert tasks.engine_work_due() == 0  # still within the grace of its own task
    _age_work()
    assert tasks.engine_work_due() == 1
    assert PopupCase.objects.get(resident=resident).state == "lifted"
    assert not EngineWork.objects.exists()


def test_the_task_that_commits_removes_the_work(django_capture_on_commit_callbacks):
    resident = _resident_with_popup_4()
    with django_capture_on_commit_callbacks(execute=True):
        _client().post(reverse("api-ingest-test-results"), {"records": [_negative(resident)]}, format="json")
    assert PopupCase.objects.get(resident=resident).state == "lifted"
    assert not EngineWork.objects.exists()


def test_an_evaluation_that_fails_leaves_the_work_for_the_sweep(django_capture_on_commit_callbacks):
    resident = _resident_with_popup_4()
    with mock.patch.object(tasks.engine_evaluate_work, "delay") as delay, \
            django_capture_on_commit_callbacks(execute=True):
        _client().post(reverse("api-ingest-test-results"), {"records": [_negative(resident)]}, format="json")
    with mock.patch.object(engine, "evaluate", side_effect=OperationalError("database went away")), \
            pytest.raises(OperationalError):
        engine_work.evaluate_work(work_id=delay.call_args.args[0])  # the last retry gives up
    assert EngineWork.objects.count() == 1
    _age_work()
    assert tasks.engine_work_due() == 1
    assert PopupCase.objects.get(resident=resident).state == "lifted"


def test_a_task_takes_the_row_it_names_and_leaves_other_batches_work(monkeypatch):
    # given two batches' work, one row per evaluation task, each task naming its row
    named = []
    monkeypatch.setattr(transaction, "on_commit", lambda fn, robust=False: fn())
    monkeypatch.setattr(tasks.engine_evaluate_work, "delay", named.append)
    engine_work.evaluate_later([3, 1, 2])
    engine_work.evaluate_later([2, 4])
    first, second = named
    # when the first batch's task runs
    with mock.patch.object(engine, "evaluate") as evaluate:
        assert tasks.engine_evaluate_work(first) == 3
    # then it evaluated the residents its row held, the row is gone, the other waits for its task
    evaluate.assert_called_once_with(resident_ids=[1, 2, 3])
    assert list(EngineWork.objects.values_list("pk", "resident_ids")) == [(second, [2, 4])]
    # and the same message delivered again (acks_late) finds its row gone and does nothing
    with mock.patch.object(engine, "evaluate") as evaluate:
        assert tasks.engine_evaluate_work(first) == 0
    evaluate.assert_not_called()
    assert EngineWork.objects.count() == 1


def test_a_task_whose_row_the_sweep_took_does_nothing(monkeypatch):
    # given a batch's work row, old enough for the sweep, and its task's message
    named = []
    monkeypatch.setattr(transaction, "on_commit", lambda fn, robust=False: fn())
    monkeypatch.setattr(tasks.engine_evaluate_work, "delay", named.append)
    engine_work.evaluate_later([7, 5])
    _age_work()
    # when the sweep takes it first, then the task runs
    with mock.patch.object(engine, "evaluate") as evaluate:
        assert tasks.engine_work_due() == 2
        assert tasks.engine_evaluate_work(named[0]) == 0
    # then the residents were evaluated once, by the sweep
    evaluate.assert_called_once_with(resident_ids=[5, 7])
    assert not EngineWork.objects.exists()


def test_a_message_queued_before_it_named_the_row_still_takes_its_row():
    # given two batches' work, one row per evaluation task
    engine_work.evaluate_later([3, 1, 2])
    engine_work.evaluate_later([2, 4])
    assert sorted(EngineWork.objects.values_list("resident_ids", flat=True)) == [[1, 2, 3], [2, 4]]
    # when a message of the older shape (the residents themselves, in any order) runs
    with mock.patch.object(engine, "evaluate") as evaluate:
        tasks.engine_evaluate_residents([2, 3, 1])
    # then its row is gone, the other batch's row waits for its own task
    evaluate.assert_called_once_with(resident_ids=[2, 3, 1])
    assert list(EngineWork.objects.values_list("resident_ids", flat=True)) == [[2, 4]]


def test_the_sweep_takes_whole_rows_a_chunk_at_a_time(monkeypatch):
    # given old work rows of 600, 600 and 1 residents, and a fresh one
    old = timezone.now() - engine_work.GRACE - dt.timedelta(minutes=1)
    EngineWork.objects.bulk_create([EngineWork(resident_ids=list(range(1, 601)), created_at=old),
                                    EngineWork(resident_ids=list(range(601, 1201)), created_at=old),
                                    EngineWork(resident_ids=[1201], created_at=old),
                                    EngineWork(resident_ids=[5000])])
    chunks = []
    monkeypatch.setattr(engine, "evaluate", lambda *, resident_ids: chunks.append(resident_ids))
    # when the sweep runs
    done = engine_work.evaluate_due()
    # then every resident of the old rows is evaluated once, at most a chunk per transaction
    # (a row is never split), and the fresh row is left to its own task
    assert done == 1201
    assert [len(c) for c in chunks] == [600, 601]
    assert sorted(r for c in chunks for r in c) == list(range(1, 1202))
    assert list(EngineWork.objects.values_list("resident_ids", flat=True)) == [[5000]]


def _batch_of_three_rows(monkeypatch):
    """A commit of 2,001 residents (three work rows) and the one message it publishes."""
    sent = []
    monkeypatch.setattr(transaction, "on_commit", lambda fn, robust=False: fn())
    monkeypatch.setattr(tasks.engine_evaluate_batch, "delay", sent.append)
    monkeypatch.setattr(tasks.engine_evaluate_work, "delay", sent.append)
    engine_work.evaluate_later(range(1, 2 * engine_work.CHUNK + 2))
    [work_ids] = sent  # one message, not one per row
    assert sorted(work_ids) == sorted(EngineWork.objects.values_list("pk", flat=True))
    sent.clear()
    return work_ids, sent


def test_a_commit_of_several_rows_sends_one_message_whose_worker_sends_the_rest(monkeypatch):
    work_ids, sent = _batch_of_three_rows(monkeypatch)
    # when a worker takes the commit's message
    with mock.patch.object(engine, "evaluate") as evaluate:
        assert tasks.engine_evaluate_batch(work_ids) == engine_work.CHUNK
    # then it sent one message per other row before evaluating the first row itself
    assert sent == work_ids[1:]
    evaluate.assert_called_once_with(resident_ids=list(range(1, engine_work.CHUNK + 1)))
    # and those messages evaluate the rest, each row once
    with mock.patch.object(engine, "evaluate") as evaluate:
        assert [tasks.engine_evaluate_work(work_id) for work_id in sent] == [engine_work.CHUNK, 1]
    assert [c.kwargs["resident_ids"] for c in evaluate.call_args_list] == [
        list(range(engine_work.CHUNK + 1, 2 * engine_work.CHUNK + 1)), [2 * engine_work.CHUNK + 1]]
    assert not EngineWork.objects.exists()


def test_the_commit_message_delivered_twice_evaluates_nothing_twice(monkeypatch):
    work_ids, sent = _batch_of_three_rows(monkeypatch)
    with mock.patch.object(engine, "evaluate") as evaluate:
        tasks.engine_evaluate_batch(work_ids)
        for work_id in list(sent):
            tasks.engine_evaluate_work(work_id)
        assert evaluate.call_count == 3
        # the same message again (acks_late after a lost acknowledgement), and the messages it sends
        sent.clear()
        assert tasks.engine_evaluate_batch(work_ids) == 0
        assert [tasks.engine_evaluate_work(work_id) for work_id in sent] == [0, 0]
    assert evaluate.call_count == 3


def test_a_retry_of_the_commit_message_does_not_send_the_rest_again(monkeypatch):
    work_ids, sent = _batch_of_three_rows(monkeypatch)
    with mock.patch.object(engine, "evaluate"):
        tasks.engine_evaluate_batch.apply(args=(work_ids,), retries=1)
    assert sent == []  # the first attempt sent them
    assert list(EngineWork.objects.order_by("pk").values_list("pk", flat=True)) == work_ids[1:]


def test_the_broker_down_while_the_worker_sends_the_rest_leaves_them_for_the_sweep(monkeypatch):
    work_ids, _sent = _batch_of_three_rows(monkeypatch)
    monkeypatch.setattr(tasks.engine_evaluate_work, "delay", mock.Mock(side_effect=BrokerDown("refused")))
    with mock.patch.object(engine, "evaluate") as evaluate:
        assert tasks.engine_evaluate_batch(work_ids) == engine_work.CHUNK  # its own row all the same
    assert EngineWork.objects.count() == 2
    _age_work()
    with mock.patch.object(engine, "evaluate") as evaluate:
        assert tasks.engine_work_due() == engine_work.CHUNK + 1
    assert evaluate.call_count == 2 and not EngineWork.objects.exists()  # a transaction per row here


def test_a_batch_of_several_rows_lifts_every_resident_through_the_one_message(
        monkeypatch, django_capture_on_commit_callbacks):
    """End to end through the API, the tasks run as a worker would (eager), rows of 2 residents."""
    monkeypatch.setattr(engine_work, "CHUNK", 2)
    residents = [_resident_with_popup_4() for _ in range(3)]
    sent = []
    batch = tasks.engine_evaluate_batch.delay
    monkeypatch.setattr(tasks.engine_evaluate_batch, "delay", lambda ids: sent.append(ids) or batch(ids))
    with django_capture_on_commit_callbacks(execute=True):
        response = _client().post(reverse("api-ingest-test-results"), {"records": [
            _negative(r, sample_id=f"S{n}") for n, r in enumerate(residents)]}, format="json")
    assert response.json()["accepted"] == 3
    assert len(sent) == 1 and len(sent[0]) == 2  # one message for the batch's two rows
    assert set(PopupCase.objects.values_list("state", flat=True)) == {"lifted"}
    assert not EngineWork.objects.exists()
