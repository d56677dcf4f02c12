"""Two submissions of the same link at the same moment: the database lets exactly one win."""

import threading

import pytest
from django.db import connection

from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceTask
from tests.factories.clearance import ClearanceTaskFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_submissions_of_one_link_store_one_answer():
    task = ClearanceTaskFactory()
    _link, token = services.clearance_link_issue(task=task)
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def submit(place: str) -> None:
        barrier.wait()
        try:
            services.clearance_confirm_submit(token=token, confirmation={"location": "in_city", "current_place": place})
            outcomes.append("ok")
        except services.LinkRefused as exc:
            outcomes.append(exc.extra["reason"])
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(f"place-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["ok", "used", "used", "used"]
    task.refresh_from_db()
    assert task.state == ClearanceTask.State.CONFIRMED
    assert task.events.filter(kind=ClearanceEvent.Kind.CONFIRMED).count() == 1
