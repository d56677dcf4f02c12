"""Type-3 investigations: each outcome records its measures, and the popup is lifted through
the engine once what the outcome asks for is on record."""

import datetime as dt

import pytest

from appeals.clearance import services
from appeals.clearance.models import ClearanceLink, ClearanceTask
from healthkit import clock
from healthkit.errors import ApplicationError
from healthkit.models import HealthStatusOrder, OutboxRecord, PopupCase, TestRequirement, TestResult
from healthkit.selectors import health_code_at
from tests.clearance.helpers import token_in
from tests.factories import PopupCaseFactory, TestResultFactory
from tests.factories.clearance import ClearanceTaskFactory, WorkerFactory
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db
AT = cst(2022, 11, 10, 10)  # day 1 of the investigation (Thursday, 10:00 Beijing time)


def _negative(resident, sampled, received=None):
    received = received or sampled + dt.timedelta(hours=8)
    return TestResultFactory(resident=resident, sampled_at=sampled, resulted_at=received, received_at=received,
                             result=TestResult.Outcome.NEGATIVE)


@pytest.fixture
def task():
    popup = PopupCaseFactory(popup_type=3, raised_at=AT - dt.timedelta(days=1))
    return ClearanceTaskFactory(resident=popup.resident, popup=popup, created_at=AT - dt.timedelta(hours=20))


@pytest.fixture
def worker(task):
    return WorkerFactory(communities=[task.community])


def _investigate(task, worker, outcome):
    with clock.frozen_at(AT):
        return services.clearance_investigate(task=task, actor=worker, outcome=outcome, reason="流调结论",
                                              confirm_high_risk=outcome == ClearanceTask.Outcome.HIGH_RISK)


def test_high_risk_orders_centralised_observation_red(task, worker, sms_outbox):
    task = _investigate(task, worker, ClearanceTask.Outcome.HIGH_RISK)
    order = HealthStatusOrder.objects.get(resident=task.resident)
    assert order.status == "red" and order.ordered_by == worker
    assert order.ends_at == cst(2022, 11, 17)  # 7 days
    assert health_code_at(task.resident, AT + dt.timedelta(days=2)).color == "red"
    assert task.state == ClearanceTask.State.MEASURES and task.outcome == "high_risk"
    # still held at the end of the period without a result; lifted with a negative from day 7
    assert services.clearance_measures_sweep(at=cst(2022, 11, 17, 1)) == 0
    _negative(task.resident, cst(2022, 11, 16, 9))
    assert services.clearance_measures_sweep(at=cst(2022, 11, 17, 1)) == 1
    task.popup.refresh_from_db()
    assert task.popup.state == PopupCase.State.LIFTED


def test_medium_risk_orders_home_observation_yellow_with_tests(task, worker):
    task = _investigate(task, worker, ClearanceTask.Outcome.MEDIUM_RISK)
    order = HealthStatusOrder.objects.get(resident=task.resident)
    assert order.status == "yellow"
    assert health_code_at(task.resident, AT + dt.timedelta(days=1)).color == "yellow"
    requirements = TestRequirement.objects.filter(resident=task.resident, kind="investigation")
    assert requirements.count() == 4


def test_listed_area_requires_tests_on_days_1_2_4_7(task, worker):
    _investigate(task, worker, ClearanceTask.Outcome.LISTED_AREA)
    triggers = list(TestRequirement.objects.filter(resident=task.resident).order_by("trigger_at")
                    .values_list("trigger_at", "deadline_at"))
    assert [t for t, _d in triggers] == [AT, cst(2022, 11, 11), cst(2022, 11, 13), cst(2022, 11, 16)]
    # each day's deadline: the end of that day plus the lab's grace (24 h)
    assert [d for _t, d in triggers] == [cst(2022, 11, 12), cst(2022, 11, 13), cst(2022, 11, 15), cst(2022, 11, 18)]


def test_listed_area_is_lifted_after_the_day_7_negative(task, worker):
    task = _investigate(task, worker, ClearanceTask.Outcome.LISTED_AREA)
    for sampled in (cst(2022, 11, 10, 12), cst(2022, 11, 11, 9), cst(2022, 11, 13, 9)):
        _negative(task.resident, sampled)
    assert services.clearance_measures_sweep(at=cst(2022, 11, 15, 12)) == 0
    _negative(task.resident, cst(2022, 11, 16, 9))
    assert services.clearance_measures_sweep(at=cst(2022, 11, 17, 0, 30)) == 1
    task.refresh_from_db()
    assert task.state == ClearanceTask.State.LIFTED
    assert OutboxRecord.objects.filter(case=task.popup, kind="lifted").exists()


def test_nothing_found_needs_the_commitment_letter_and_a_negative_test(task, worker, client, sms_outbox,
                                                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        task = _investigate(task, worker, ClearanceTask.Outcome.NOTHING_FOUND)
    assert task.commitment_required and task.state == ClearanceTask.State.MEASURES
    link = ClearanceLink.objects.get(task=task, purpose=ClearanceLink.Purpose.COMMITMENT)
    token = token_in(sms_outbox.outbox[-1])
    # a negative test alone does not lift
    _negative(task.resident, AT + dt.timedelta(hours=2))
    assert services.clearance_measures_sweep(at=AT + dt.timedelta(hours=12)) == 0
    # signing the letter through the SMS link lifts at once (the test is already on record)
    with clock.frozen_at(AT + dt.timedelta(hours=13)), django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/clearance/r/{token}/", {"signature": task.resident.name, "agree": "on"})
    assert response.status_code == 200
    task.refresh_from_db()
    link.refresh_from_db()
    assert link.used_at is not None and task.commitment_signed_at is not None and len(task.commitment_digest) == 64
    assert task.state == ClearanceTask.State.LIFTED
    task.popup.refresh_from_db()
    assert task.popup.state == PopupCase.State.LIFTED
    assert sms_outbox.outbox[-1].idempotency_key.endswith(":decision")


def test_a_test_sampled_before_the_investigation_does_not_count(task, worker):
    task = _investigate(task, worker, ClearanceTask.Outcome.NOTHING_FOUND)
    ClearanceTask.objects.filter(pk=task.pk).update(commitment_signed_at=AT + dt.timedelta(hours=1))
    _negative(task.resident, AT - dt.timedelta(hours=3), received=AT + dt.timedelta(hours=2))
    assert services.clearance_measures_sweep(at=AT + dt.timedelta(hours=12)) == 0


def test_only_a_popup_3_is_investigated(worker):
    other = ClearanceTaskFactory(popup=PopupCaseFactory(popup_type=1), origin=ClearanceTask.Origin.IN_CITY)
    with pytest.raises(ApplicationError):
        services.clearance_investigate(task=other, actor=worker, outcome="listed_area", reason="x")


def test_investigation_needs_an_outcome_and_findings(task, worker):
    with pytest.raises(ApplicationError):
        services.clearance_investigate(task=task, actor=worker, outcome="whatever", reason="x")
    with pytest.raises(ApplicationError):
        services.clearance_investigate(task=task, actor=worker, outcome="listed_area", reason=" ")


def test_investigation_form_is_offered_only_before_measures(client, task, worker):
    from django.urls import reverse

    client.force_login(worker)
    url = reverse("clearance:task", args=[task.pk])
    assert 'id="form-investigate"' in client.get(url).content.decode()
    _investigate(task, worker, ClearanceTask.Outcome.LISTED_AREA)
    assert 'id="form-investigate"' not in client.get(url).content.decode()
