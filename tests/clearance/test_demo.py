"""The demo seed gives worker1 believable tasks in every state, all in worker1's communities."""

import io

import pytest
from django.core.management import call_command

from appeals.clearance.models import ClearanceTask
from appeals.clearance.selectors import tasks_visible_to
from communities.models import User

pytestmark = pytest.mark.django_db


def test_seed_demo_gives_worker1_tasks_in_every_state():
    out = io.StringIO()
    call_command("seed_demo", residents=160, stdout=out)
    worker = User.objects.get(username="worker1")
    mine = tasks_visible_to(worker)
    assert mine.count() == ClearanceTask.objects.count() > 0
    assert set(mine.values_list("state", flat=True)) == set(ClearanceTask.State.values)
    assert set(mine.values_list("origin", flat=True)) >= {"risk_link", "in_city", "misattribution", "stranded",
                                                          "checkpoint"}
    # open tasks hold open popups, and each open popup has at most one open task
    open_tasks = mine.filter(state__in=ClearanceTask.OPEN_STATES)
    assert not open_tasks.exclude(popup__state__in=["active", "under_review"]).exists()
    # the printed resident link works
    import re

    from django.test import Client

    path = re.search(r"(/clearance/r/\S+/)", out.getvalue()).group(1)
    assert Client().get(path).status_code == 200
