"""Both evaluation paths: event-driven (a Celery task enqueued when an ingest batch commits) and
the periodic sweep. Both are idempotent and safe to run at the same time."""

import datetime as dt
import threading
from unittest import mock

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communities.models import User
from healthkit import engine, ingest, tasks
from healthkit.models import OutboxRecord, PopupCase, PopupEvent
from healthkit.schedule import BEAT_SCHEDULE
from tests.factories import ResidentFactory, UserFactory
from tests.factories.healthkit import (
    ArrivalFactory,
    DownstreamEndpointFactory,
    QuarantineOrderFactory,
    StayFactory,
    cst,
)

ARRIVED = cst(2022, 6, 1, 9)
DEADLINE = ARRIVED + dt.timedelta(hours=72)


def _api():
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    user = UserFactory(role=User.Role.INTEGRATION)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _snapshot():
    return (PopupCase.objects.count(), PopupEvent.objects.count(), OutboxRecord.objects.count(),
            list(PopupCase.objects.order_by("pk").values_list("pk", "state", "raised_at", "lifted_at")))


@pytest.mark.django_db
def test_negative_result_posted_to_the_api_lifts_type_4_when_the_batch_commits(django_capture_on_commit_callbacks):
    resident = ResidentFactory(id_number="110105196001010017")
    client = _api()
    arrived = timezone.now() - dt.timedelta(hours=80)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("api-ingest-arrivals"), {"records": [
            {"id_number": "110105196001010017", "arrived_at": arrived.isoformat(), "from_county": "310115"}]},
            format="json")
    (case,) = PopupCase.objects.filter(resident=resident, popup_type=4)
    assert case.state == "active"
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post(reverse("api-ingest-test-results"), {"records": [{
            "id_number": "110105196001010017", "lab": "lab", "sample_id": "S1",
            "sampled_at": (arrived + dt.timedelta(hours=75)).isoformat(),
            "resulted_at": (arrived + dt.timedelta(hours=79)).isoformat(), "result": "negative"}]},
            format="json")
    assert callbacks  # the evaluation was enqueued on commit, not before
    case.refresh_from_db()
    assert case.state == "lifted"
    assert case.events.get(kind="lifted").data["records"]["ended_by"] == "negative_result"


@pytest.mark.django_db
def test_evaluation_is_enqueued_on_commit_naming_its_work_row_only(django_capture_on_commit_callbacks):
    from healthkit.models import EngineWork

    resident = ResidentFactory(id_number="110105196001010017")
    record = {"id_number": "110105196001010017", "arrived_at": timezone.now().isoformat(), "from_county": "310115"}
    with mock.patch.object(tasks.engine_evaluate_work, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            ingest.ingest(kind="arrivals", records=[record])
        assert not delay.called  # not before the commit
        assert len(callbacks) == 1
        callbacks[0]()
        # the message is the work row's primary key, never personal data; the row holds the residents
        work = EngineWork.objects.get()
        delay.assert_called_once_with(work.pk)
        assert work.resident_ids == [resident.pk]
        delay.reset_mock()
        with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
            ingest.ingest(kind="arrivals", records=[{**record, "from_county": "310116"}])
            transaction.set_rollback(True)
        assert callbacks == [] and not delay.called  # a rolled-back batch enqueues nothing


@pytest.mark.django_db
def test_large_batches_are_evaluated_in_chunks(monkeypatch):
    from healthkit import engine_work
    from healthkit.models import EngineWork

    enqueued = []
    monkeypatch.setattr(transaction, "on_commit", lambda fn, robust=False: fn())
    monkeypatch.setattr(tasks.engine_evaluate_work, "delay", enqueued.append)
    monkeypatch.setattr(tasks.engine_evaluate_batch, "delay", enqueued.append)
    ingest._evaluate_on_commit(list(range(1, engine_work.CHUNK * 2 + 2)))
    # one work row per evaluation task, on record with the batch whatever happens to the
    # publish, and one message for the commit naming its rows in order
    rows = dict(EngineWork.objects.values_list("pk", "resident_ids"))
    [named] = enqueued
    assert sorted(named) == sorted(rows)
    assert [rows[pk] for pk in named] == [list(range(1, 1001)), list(range(1001, 2001)), [2001]]


@pytest.mark.django_db
def test_a_local_case_reevaluates_residents_who_stayed_in_that_county(django_capture_on_commit_callbacks):
    now = timezone.now()
    stay = StayFactory(county="420111", started_at=now - dt.timedelta(days=4), ended_at=now - dt.timedelta(days=2),
                       received_at=now - dt.timedelta(days=2))
    elsewhere = StayFactory(county="420102", started_at=now - dt.timedelta(days=4), ended_at=now - dt.timedelta(days=2))
    from healthkit.models import EngineWork

    evaluate = tasks.engine_evaluate_work
    queued = []

    def delay(work_id):
        queued.append(EngineWork.objects.get(pk=work_id).resident_ids)
        return evaluate.apply(args=(work_id,))

    with mock.patch.object(evaluate, "delay", side_effect=delay), \
            django_capture_on_commit_callbacks(execute=True):
        ingest.ingest(kind="local_cases", records=[{"county": "420111", "reported_at": now.isoformat()}])
    assert queued == [[stay.resident_id]]
    assert not EngineWork.objects.exists()
    assert PopupCase.objects.filter(resident=stay.resident, popup_type=1, state="active").exists()
    assert not PopupCase.objects.filter(resident=elsewhere.resident).exists()


@pytest.mark.django_db
def test_evaluate_twice_at_the_same_instant_changes_nothing_the_second_time():
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    QuarantineOrderFactory(resident=arrival.resident, starts_at=ARRIVED, ends_at=ARRIVED + dt.timedelta(days=7))
    DownstreamEndpointFactory()
    first = engine.evaluate(resident_ids=[arrival.resident_id], at=DEADLINE)
    before = _snapshot()
    again = engine.evaluate(resident_ids=[arrival.resident_id], at=DEADLINE)
    assert (first.raised, first.deliveries) == (2, 2)
    assert again == engine.Evaluation(0, 0, 0)
    assert _snapshot() == before


@pytest.mark.django_db
def test_sweep_is_idempotent_and_catches_time_based_changes():
    arrival = ArrivalFactory(arrived_at=ARRIVED)
    order = QuarantineOrderFactory(starts_at=ARRIVED, ends_at=cst(2022, 6, 3, 15))
    engine.sweep(at=ARRIVED + dt.timedelta(hours=1))
    assert list(PopupCase.objects.values_list("popup_type", flat=True)) == [2]
    result = engine.sweep(at=DEADLINE + dt.timedelta(hours=1))  # deadline passed, quarantine over
    assert (result.raised, result.lifted) == (1, 1)
    before = _snapshot()
    assert engine.sweep(at=DEADLINE + dt.timedelta(hours=1)) == engine.Evaluation(0, 0, 0)
    assert engine.sweep(at=DEADLINE + dt.timedelta(hours=2)) == engine.Evaluation(0, 0, 0)
    assert _snapshot() == before
    quarantine = PopupCase.objects.get(resident=order.resident)
    assert quarantine.lifted_at == cst(2022, 6, 4)  # 00:00 the day after the end, not sweep time
    assert PopupCase.objects.get(resident=arrival.resident).raised_at == DEADLINE


@pytest.mark.django_db
def test_the_sweep_and_outbox_retries_are_on_the_beat_schedule():
    tasks_on_beat = {entry["task"] for entry in BEAT_SCHEDULE.values()}
    assert {"healthkit.tasks.engine_sweep", "healthkit.tasks.outbox_dispatch_due"} <= tasks_on_beat


@pytest.mark.django_db(transaction=True)
def test_concurrent_evaluations_and_sweeps_raise_and_log_each_change_once():
    residents = [ArrivalFactory(arrived_at=ARRIVED).resident_id for _ in range(40)]
    DownstreamEndpointFactory()
    errors = []
    start = threading.Barrier(6)

    def run(job):
        try:
            start.wait()
            job()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    jobs = [
        lambda: engine.evaluate(resident_ids=residents, at=DEADLINE),
        lambda: engine.evaluate(resident_ids=list(reversed(residents)), at=DEADLINE),
        lambda: engine.evaluate(resident_ids=residents[::2], at=DEADLINE),
        lambda: engine.sweep(at=DEADLINE),
        lambda: engine.sweep(at=DEADLINE),
        lambda: engine.evaluate(resident_ids=None, at=DEADLINE),
    ]
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert PopupCase.objects.filter(popup_type=4, state="active").count() == 40
    assert PopupEvent.objects.filter(kind="raised").count() == 40
    assert OutboxRecord.objects.count() == 40
    # Then everyone tests negative; concurrent lifts happen once each.
    from healthkit.models import TestResult

    TestResult.objects.bulk_create(
        TestResult(resident_id=r, lab="lab", sample_id=f"S{r}", sampled_at=DEADLINE, resulted_at=DEADLINE,
                   received_at=DEADLINE + dt.timedelta(minutes=5), result="negative") for r in residents)
    later = DEADLINE + dt.timedelta(minutes=10)
    jobs = [lambda: engine.evaluate(resident_ids=residents, at=later), lambda: engine.sweep(at=later),
            lambda: engine.evaluate(resident_ids=residents[::-1], at=later), lambda: engine.sweep(at=later),
            lambda: engine.evaluate(resident_ids=None, at=later), lambda: engine.evaluate(resident_ids=residents, at=later)]
    start = threading.Barrier(6)
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.sweep(at=later)  # whatever a SKIP LOCKED run left, the next pass finishes
    assert errors == []
    assert PopupCase.objects.filter(popup_type=4, state="lifted").count() == 40
    assert PopupEvent.objects.filter(kind="lifted").count() == 40
    assert OutboxRecord.objects.filter(kind="lifted").count() == 40


def test_engine_tasks_retry_on_database_hiccups():
    from django.db import OperationalError

    for task in (tasks.engine_evaluate_work, tasks.engine_evaluate_residents, tasks.engine_sweep):
        assert OperationalError in task.autoretry_for and task.acks_late
