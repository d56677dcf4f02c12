"""Two beats and two workers at once: every periodic job runs twice at the same moment, and
still no SMS is handed to the gateway twice, no evaluation is lost or doubled (the claims use
SKIP LOCKED; evaluation is idempotent). The slow, real-process version is bench/faults.py."""

import datetime as dt
import threading
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone

from communities import pii
from healthkit import engine, sms, tasks
from healthkit.models import EngineWork, PopupCase, SmsMessage, TestResult
from tests.factories import TestResultFactory, make_phone
from tests.factories.healthkit import ArrivalFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _twice_at_once(job):
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            job()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_sms_and_engine_jobs_twice_at_once(sms_outbox, monkeypatch):
    calls = Counter()
    original = sms_outbox.send

    def counting_send(**kwargs):
        calls[kwargs["idempotency_key"]] += 1
        return original(**kwargs)

    monkeypatch.setattr(sms_outbox, "send", counting_send)
    now = timezone.now()
    for i in range(30):  # queued, never published: only the beat job sends them
        SmsMessage.objects.create(idempotency_key=f"beat-{i}", purpose="clearance_confirm", body="x",
                                  phone_encrypted=pii.encrypt(make_phone()),
                                  phone_masked="138****0000", next_attempt_at=now)
    people = []
    for _ in range(10):
        arrival = ArrivalFactory(arrived_at=now - dt.timedelta(days=4), received_at=now - dt.timedelta(days=4))
        people.append(arrival.resident_id)
    engine.evaluate(resident_ids=people)
    for resident_id in people:
        TestResultFactory(resident_id=resident_id, sampled_at=now - dt.timedelta(hours=3), resulted_at=now,
                          received_at=now, result=TestResult.Outcome.NEGATIVE)
    EngineWork.objects.bulk_create(EngineWork(resident_ids=[r], created_at=now - dt.timedelta(minutes=5))
                                   for r in people)

    _twice_at_once(tasks.sms_deliver_due)
    _twice_at_once(tasks.engine_work_due)

    assert set(SmsMessage.objects.values_list("state", flat=True)) == {"sent"}
    assert len(calls) == 30 and max(calls.values()) == 1
    assert not EngineWork.objects.exists()
    cases = PopupCase.objects.filter(resident_id__in=people, popup_type=4)
    assert cases.count() == 10 and set(cases.values_list("state", flat=True)) == {"lifted"}
    assert sms.sms_due_ids() == []
