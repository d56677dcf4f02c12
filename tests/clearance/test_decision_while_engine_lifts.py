"""A worker decides while the engine lifts the same popup (its transaction holding the row, as a
sweep over many popups does for seconds): the decision goes through on the popup as it is once
locked, instead of failing on "a lifted popup cannot become lifted / active"."""

import threading
import time

import psycopg
import pytest
from django.db import connection
from django.utils import translation

from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from healthkit.errors import ApplicationError
from healthkit.models import PopupCase, PopupEvent, SmsMessage
from tests.factories import PopupCaseFactory
from tests.factories.clearance import ClearanceTaskFactory, WorkerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _while_the_engine_lifts(popup: PopupCase, decide) -> object:
    """Run `decide` in a thread while another session has lifted `popup` and not yet committed
    (the plain read sees it open, the lock waits for the commit); returns what `decide` returned
    or raised."""
    engine = psycopg.connect(**connection.get_connection_params())
    engine.execute("UPDATE healthkit_popupcase SET state = 'lifted', lifted_at = now(), updated_at = now() "
                   "WHERE id = %s", [popup.pk])
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            # A new thread speaks the site's default language (zh-hans); the tests read English.
            with translation.override("en"):
                outcome["result"] = decide()
        except Exception as exc:  # noqa: BLE001 - the test asserts on it
            outcome["result"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.5)  # the decision is waiting for the popup's lock
    engine.commit()
    engine.close()
    thread.join(timeout=30)
    return outcome["result"]


def _task_on(popup_type: int, state: str = PopupCase.State.ACTIVE) -> ClearanceTask:
    task = ClearanceTaskFactory(popup=None)
    popup = PopupCaseFactory(resident=task.resident, popup_type=popup_type, state=state)
    ClearanceTask.objects.filter(pk=task.pk).update(popup=popup)
    return ClearanceTask.objects.get(pk=task.pk)


def test_accept_while_the_engine_lifts_the_popup_is_accepted():
    task = _task_on(popup_type=1)
    worker = WorkerFactory(communities=[task.community])

    result = _while_the_engine_lifts(task.popup, lambda: services.clearance_accept(
        task=task, actor=worker, reason="已报备，健康监测期满"))

    assert isinstance(result, ClearanceTask), result
    task.refresh_from_db()
    assert task.state == ClearanceTask.State.LIFTED
    assert PopupCase.objects.get(pk=task.popup_id).state == PopupCase.State.LIFTED
    assert not PopupEvent.objects.filter(case_id=task.popup_id).exists()  # lifted once, by the engine


def test_reject_while_the_engine_lifts_the_popup_is_refused_and_leaves_it_lifted():
    # The resident is texted the engine's lift: a rejection SMS beside it would contradict it.
    task = _task_on(popup_type=3, state=PopupCase.State.UNDER_REVIEW)
    worker = WorkerFactory(communities=[task.community])

    result = _while_the_engine_lifts(task.popup, lambda: services.clearance_reject(
        task=task, actor=worker, reason="行程不符", next_step=ClearanceTask.NextStep.values[0]))

    assert isinstance(result, ApplicationError) and "not recorded" in result.message, result
    assert ClearanceTask.objects.get(pk=task.pk).state == ClearanceTask.State.OPEN  # the sweep closes it
    assert PopupCase.objects.get(pk=task.popup_id).state == PopupCase.State.LIFTED
    assert not SmsMessage.objects.filter(purpose="clearance_rejected").exists()
