"""`manage.py replay_scenario FILE|-`: the real engine on a timeline, in a throwaway
transaction, one JSON line per `check`; errors name the event's index."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from communities.models import Resident
from healthkit import simulator
from healthkit.models import Arrival, OutboxRecord, PopupCase, PopupEvent, TestResult
from healthkit.scenario import ENGINE_EVENTS
from tests.factories import ResidentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield
SCENARIOS = Path(__file__).resolve().parents[2] / "docs" / "scenarios"


def _line(at, code, popups):
    return {"at": at, "code": code, "active_popups": popups}


EXPECTED = {
    "type1_lifted_at_switch.json": [
        _line("2022-07-10T10:00:00+08:00", "green", [1]),
        _line("2022-07-15T23:59:59+08:00", "green", [1]),
        _line("2022-07-16T00:00:00+08:00", "green", []),  # 14 -> 7 days: already past the window
        _line("2022-07-20T10:00:00+08:00", "green", []),
    ],
    "type1_policy_switch.json": [
        _line("2022-07-11T20:00:01+08:00", "green", []),
        _line("2022-07-12T09:00:00+08:00", "green", [1]),
        _line("2022-07-15T23:59:59+08:00", "green", [1]),
        _line("2022-07-16T00:00:00+08:00", "green", [1]),
        _line("2022-07-17T17:59:59+08:00", "green", [1]),
        _line("2022-07-17T18:00:00+08:00", "green", []),  # left 07-10 18:00 + 7 days
    ],
    "type2_quarantine.json": [
        _line("2022-05-01T10:00:00+08:00", "green", [2]),
        _line("2022-05-08T23:59:59+08:00", "green", [2]),
        _line("2022-05-09T00:00:00+08:00", "green", []),
    ],
    "type3_community_decision.json": [
        _line("2022-09-01T08:00:00+08:00", "green", [3]),
        _line("2022-09-10T09:00:00+08:00", "green", [3]),  # a negative result lifts nothing
        _line("2022-09-10T10:00:00+08:00", "green", [3]),  # "keep"
        _line("2022-09-11T15:00:00+08:00", "green", []),
    ],
    "type4_arrival.json": [
        _line("2022-06-04T08:59:59+08:00", "green", []),
        _line("2022-06-04T09:00:00+08:00", "green", [4]),
        _line("2022-06-04T10:00:01+08:00", "green", [4]),  # sampled before arriving: no lift
        _line("2022-06-04T12:00:00+08:00", "green", []),
    ],
    "type4_positive_then_negative.json": [
        _line("2022-10-02T18:00:00+08:00", "red", []),
        _line("2022-10-04T12:00:00+08:00", "red", [4]),  # a positive lifts nothing
        _line("2022-10-12T20:00:00+08:00", "green", []),
    ],
    "type5_abolished.json": [
        _line("2022-07-06T12:00:00+08:00", "green", [5]),
        _line("2022-07-15T23:59:59+08:00", "green", [5]),
        _line("2022-07-16T00:00:00+08:00", "green", []),
        _line("2022-07-20T12:00:00+08:00", "green", []),  # never raised from 07-16
    ],
    "example.json": [
        _line("2022-07-13T10:00:00+08:00", "green", [1]),
        _line("2022-07-16T00:00:00+08:00", "green", [1, 4]),
        _line("2022-07-17T18:00:00+08:00", "green", [4]),
        _line("2022-07-17T18:00:00+08:00", "green", []),
    ],
}


def _replay(path_or_text, **kwargs):
    out = io.StringIO()
    call_command("replay_scenario", path_or_text, stdout=out, **kwargs)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_files_give_the_documented_output(name):
    assert _replay(str(SCENARIOS / name)) == EXPECTED[name]


def test_every_example_file_is_covered():
    assert sorted(p.name for p in SCENARIOS.glob("*.json")) == sorted(EXPECTED)


def test_reads_stdin_and_leaves_no_trace(monkeypatch):
    registered = ResidentFactory(id_number="110105196001010017")
    before = (Resident.objects.count(), PopupCase.objects.count(), PopupEvent.objects.count(),
              OutboxRecord.objects.count(), Arrival.objects.count(), TestResult.objects.count())
    monkeypatch.setattr("sys.stdin", io.StringIO((SCENARIOS / "type4_arrival.json").read_text()))
    assert _replay("-") == EXPECTED["type4_arrival.json"]
    after = (Resident.objects.count(), PopupCase.objects.count(), PopupEvent.objects.count(),
             OutboxRecord.objects.count(), Arrival.objects.count(), TestResult.objects.count())
    assert after == before
    assert not PopupCase.objects.filter(resident=registered).exists()


def _scenario(tmp_path, events):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"resident": {"name": "张三", "id_number": "110105196001010017"},
                                "events": events}))
    return str(path)


def test_unknown_event_type_names_its_index_even_without_venues(tmp_path, monkeypatch):
    # As if the venues app were not installed: only the engine's own handlers are registered.
    monkeypatch.setattr(simulator, "_handlers", dict(ENGINE_EVENTS))
    path = _scenario(tmp_path, [{"at": "2022-06-01T09:00:00+08:00", "type": "check"},
                                {"at": "2022-06-01T10:00:00+08:00", "type": "venue_scan", "venue": "V1"}])
    with pytest.raises(CommandError, match=r"event 1: unknown event type 'venue_scan'"):
        _replay(path)


@pytest.mark.parametrize(("event", "message"), [
    ({"at": "2022-06-01T09:00:00+08:00", "type": "arrival"}, r"event 1 \(arrival\): missing field county"),
    ({"at": "2022-06-01T09:00:00", "type": "check"}, r"event 1 \(check\): `at` must be .* UTC offset"),
    ({"at": "2022-06-01T09:00:00+08:00", "type": "test_result", "sampled_at": "2022-06-01T08:00:00+08:00",
      "result": "unclear"}, r"event 1 \(test_result\): result"),
    ({"at": "2022-06-01T09:00:00+08:00", "type": "community_decision", "popup_type": 3, "decision": "lift",
      "reason": "x"}, r"event 1 \(community_decision\): no open popup of type 3"),
    ({"at": "2022-06-01T07:00:00+08:00", "type": "check"}, r"event 1 \(check\): events must be in time order"),
    ("check", r"event 1: each event is a JSON object"),
    ({"at": "2022-06-01T09:00:00+08:00", "type": "stay", "county": "42", "from": "2022-05-30T09:00:00+08:00"},
     r"event 1 \(stay\): .*6-digit"),
])
def test_malformed_event_stops_with_its_index(tmp_path, event, message):
    path = _scenario(tmp_path, [{"at": "2022-06-01T08:00:00+08:00", "type": "check"}, event])
    with pytest.raises(CommandError, match=message):
        _replay(path)


def test_malformed_file_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CommandError, match="not valid JSON"):
        _replay(str(bad))
    bad.write_text(json.dumps({"resident": {"name": "x", "id_number": "123"}, "events": []}))
    with pytest.raises(CommandError, match="resident.id_number"):
        _replay(str(bad))


def test_a_community_decision_the_policy_does_not_allow_stops_with_its_index(tmp_path):
    path = _scenario(tmp_path, [
        {"at": "2022-06-01T09:00:00+08:00", "type": "arrival", "county": "310115"},
        {"at": "2022-06-04T10:00:00+08:00", "type": "check"},
        {"at": "2022-06-04T11:00:00+08:00", "type": "community_decision", "popup_type": 4, "decision": "lift",
         "reason": "社区核实"},
    ])
    with pytest.raises(CommandError, match=r"event 2 \(community_decision\): Popup 4 is not lifted by a community"):
        _replay(path)
