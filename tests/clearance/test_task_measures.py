"""The worker's measures on a type-3 task: each test day with its dates and the result on record
or 'missing', the observation order and its end, what is still needed; the worklist flags tasks
with a test missing; the outcome must be chosen and a high-risk outcome confirmed; the resident
reads the same measures with real dates (status page, SMS)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from appeals.clearance import selectors, services
from appeals.clearance.models import ClearanceTask
from healthkit import clock
from healthkit.models import HealthStatusOrder
from tests.clearance.helpers import negative_result
from tests.factories import PopupCaseFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db
AT = cst(2022, 11, 10, 10)  # day 1 of the investigation, 10:00 Beijing time


@pytest.fixture
def task():
    popup = PopupCaseFactory(popup_type=3, raised_at=AT - dt.timedelta(days=1))
    appeal = RoutedAppealFactory(resident=popup.resident, popup=popup)
    return ClearanceTaskFactory(resident=popup.resident, popup=popup, appeal=appeal,
                                created_at=AT - dt.timedelta(hours=20))


@pytest.fixture
def worker(task, client):
    user = WorkerFactory(communities=[task.community])
    client.force_login(user)
    return user


def _listed_area(task, worker):
    with clock.frozen_at(AT):
        return services.clearance_investigate(task=task, actor=worker, outcome="listed_area", reason="同时空")


def test_test_days_with_dates_results_and_missing(task, worker):
    task = _listed_area(task, worker)
    negative_result(task.resident, cst(2022, 11, 10, 15))  # day 1 taken
    with translation.override("en"):
        measures = selectors.task_measures(task, at=cst(2022, 11, 13, 10))  # day 2's window is over
    assert [(t.day, t.state) for t in measures.tests] == [
        (1, "on_record"), (2, "missing"), (4, "due"), (7, "upcoming")]
    assert [timezone.localdate(t.due_from) for t in measures.tests][1:] == [dt.date(2022, 11, 11), dt.date(2022, 11, 13),
                                                               dt.date(2022, 11, 16)]
    assert measures.test_missing
    assert any("day 2" in line and "was not taken" in line for line in measures.still_needed)


def test_task_page_shows_the_measures_and_the_worklist_flags_the_missing_test(task, worker, client):
    task = _listed_area(task, worker)
    with clock.frozen_at(cst(2022, 11, 13, 10)):
        page = client.get(reverse("clearance:task", args=[task.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
        worklist = client.get(reverse("clearance:worklist"), {"test_missing": "on"}).content.decode()
    assert 'id="measures"' in page and page.count('data-test-state="missing"') == 2  # days 1 and 2
    assert "2022-11-16" in page  # day 7's date
    assert task.reference in worklist and 'data-test-missing="1"' in worklist


def test_medium_risk_shows_the_yellow_order_and_its_end(task, worker):
    with clock.frozen_at(AT):
        task = services.clearance_investigate(task=task, actor=worker, outcome="medium_risk", reason="次密接")
    measures = selectors.task_measures(task, at=AT)
    assert measures.order is not None and measures.order.status == "yellow"
    assert measures.order.ends_at == measures.measures_until


def test_outcome_has_no_preselected_answer_and_high_risk_needs_confirmation(task, worker, client):
    with clock.frozen_at(AT):
        page = client.get(reverse("clearance:task", args=[task.pk])).content.decode()
        form = page[page.index('id="form-investigate"'):]
        form = form[:form.index("</form>")]
        assert 'type="radio"' in form and "checked" not in form
        url = reverse("clearance:task-action", args=[task.pk, "investigate"])
        client.post(url, {"outcome": "high_risk", "reason": "密接"})
        task.refresh_from_db()
        assert task.state == ClearanceTask.State.OPEN and not HealthStatusOrder.objects.exists()
        client.post(url, {"outcome": "high_risk", "reason": "密接", "confirm_high_risk": "on"})
    task.refresh_from_db()
    assert task.state == ClearanceTask.State.MEASURES and HealthStatusOrder.objects.get().status == "red"


def test_resident_sees_the_measures_with_real_dates(task, worker, sms_outbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        task = _listed_area(task, worker)
    assert any("1 (11-10), 2 (11-11), 4 (11-13), 7 (11-16)" in m.body for m in sms_outbox.outbox)
    progress = selectors.clearance_progress_for_appeal(task.appeal)
    assert [t.day for t in progress.measures.tests] == [1, 2, 4, 7]
