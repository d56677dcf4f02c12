"""seed_demo's popups are the engine's own: the sweep Celery beat runs after it (at the demo's
now, and a day later) changes none of them, and popups of every type stay active to explore."""

import datetime as dt
import io
from collections import defaultdict

import pytest
from django.core.management import call_command
from django.db.models import Q

from healthkit import clock, engine
from healthkit.models import PopupCase, PopupEvent

pytestmark = pytest.mark.django_db

AUTOMATIC = (1, 2, 4, 5)
IN_PROGRESS = ("in_progress", "waiting_resident", "routed")


def _popups() -> dict[int, tuple]:
    return {p.pk: (p.state, p.lifted_at) for p in PopupCase.objects.all()}


@pytest.fixture
def demo():
    call_command("seed_demo", residents=200, stdout=io.StringIO())
    return clock.now()


def test_full_sweep_at_the_demo_now_changes_no_popup(demo):
    # given the demo city; when the engine's full sweep runs at the demo's now
    before = _popups()
    result = engine.sweep(at=demo, full=True)
    # then it lifts and raises nothing
    assert (result.lifted, result.raised) == (0, 0)
    assert _popups() == before
    # and a day later still nothing is lifted (a newcomer has time to explore)
    assert engine.sweep(at=demo + dt.timedelta(days=1), full=True).lifted == 0
    active = set(PopupCase.objects.filter(state=PopupCase.State.ACTIVE).values_list("popup_type", flat=True))
    assert active == {1, 2, 3, 4}


def test_every_type_in_every_state_with_the_engine_own_history(demo):
    states = set(PopupCase.objects.filter(dedupe_key__in=["", "upstream"]).values_list("popup_type", "state"))
    assert states == {(t, s) for t in (1, 2, 3, 4) for s in PopupCase.State.values} | {(5, "lifted")}
    engine_cases = PopupCase.objects.filter(popup_type__in=AUTOMATIC, source=PopupCase.Source.ENGINE)
    assert engine_cases.count() == PopupCase.objects.filter(popup_type__in=AUTOMATIC, dedupe_key="").count()
    # each automatic popup was raised by the engine from signal rows, and each lifted one was
    # lifted by the engine with what ended it (never "no rule holds")
    raised = PopupEvent.objects.filter(case__in=engine_cases, kind="raised", actor_label="engine")
    assert raised.count() == engine_cases.count()
    assert all(event.data["records"] for event in raised)
    lifted = engine_cases.filter(state=PopupCase.State.LIFTED)
    endings = defaultdict(set)
    for event in PopupEvent.objects.filter(case__in=lifted, kind="lifted").select_related("case"):
        assert event.actor_label == "engine"
        endings[event.case.popup_type].add(event.data["records"]["ended_by"])
    assert endings[2] == {"quarantine_ended"} and endings[4] == {"negative_result"}
    assert endings[1] <= {"window_since_leaving", "county_case_free"} and endings[1]
    assert endings[5] <= {"window_since_leaving", "policy_boundary"} and endings[5]
    abolished = dt.datetime(2022, 7, 16, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert not PopupCase.objects.filter(popup_type=5, lifted_at__gt=abolished).exists()


def test_popups_under_review_belong_to_an_appeal_or_clearance_in_progress(demo):
    under_review = PopupCase.objects.filter(state=PopupCase.State.UNDER_REVIEW)
    assert under_review.exists()
    orphans = under_review.exclude(Q(appeals__status__in=IN_PROGRESS)
                                   | Q(clearance_tasks__state__in=["confirmed", "info_requested", "measures"]))
    assert not orphans.exists()
