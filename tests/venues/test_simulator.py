"""The simulator's venue_scan / venue_risk events give the same popups as production."""

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from healthkit.models import PopupCase
from healthkit.selectors import health_code_at
from healthkit.simulator import registered_event_types
from tests.factories import ResidentFactory, UserFactory
from tests.factories.venues import VenueFactory
from venues import exposure, ingest, services

pytestmark = pytest.mark.django_db
SCENARIO = Path(__file__).parent / "scenarios" / "venue_risk_corrected.json"


def _replay() -> list[dict]:
    out = io.StringIO()
    call_command("replay_scenario", str(SCENARIO), stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_venue_events_are_registered():
    assert {"venue_scan", "venue_risk"} <= set(registered_event_types())


def test_replay_matches_the_production_path():
    scenario = json.loads(SCENARIO.read_text())
    events = scenario["events"]
    at = [dt.datetime.fromisoformat(e["at"]) for e in events]

    # given the same inputs through the production services and the exposure job
    resident = ResidentFactory(id_number=scenario["resident"]["id_number"])
    venue = VenueFactory(name="望京某火锅店")
    client = UserFactory(role="integration")
    supervisor = UserFactory(role="supervisor")
    production = []

    def check(i):
        code = health_code_at(resident, at[i])
        production.append({"at": events[i]["at"], "code": code.color, "active_popups": code.popup_types})

    def scan(i):
        ingest.scans_ingest(records=[{"id_number": scenario["resident"]["id_number"], "venue": venue.code,
                                      "scanned_at": events[i]["at"]}], client=client)
        exposure.exposure_run_due(at=at[i])

    scan(0)
    check(1)
    window = services.risk_window_create(
        venue=venue, starts_at=dt.datetime.fromisoformat(events[2]["from"]),
        ends_at=dt.datetime.fromisoformat(events[2]["to"]), risk_level="high", reason=events[2]["reason"],
        actor=supervisor, at=at[2])
    exposure.exposure_run(window_id=window.pk, at=at[2])
    check(3)
    scan(4)
    check(5)
    services.risk_window_correct(
        window=window, starts_at=dt.datetime.fromisoformat(events[6]["from"]),
        ends_at=dt.datetime.fromisoformat(events[6]["to"]), risk_level="high", reason=events[2]["reason"],
        correction=events[6]["correction"], actor=supervisor, at=at[6])
    exposure.exposure_run(window_id=window.pk, at=at[6])
    check(7)

    # when the scenario is replayed; then the answers are the same
    assert _replay() == production
    assert [p["active_popups"] for p in production] == [[], [3], [3], []]
    case = PopupCase.objects.get(resident=resident)
    assert case.state == "withdrawn" and case.raised_at == at[2] and case.lifted_at == at[6]


def test_replay_leaves_nothing_behind():
    _replay()
    assert not PopupCase.objects.exists()
