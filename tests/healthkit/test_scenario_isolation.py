"""`replay_scenario` answers from the file alone: rows stored in the database (local cases, risk
windows, scans, popups) neither change a scenario's output nor are touched by it, while the
rules in force are the stored policies."""

import io
import json

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from healthkit.models import LocalCase, PopupCase, PopupPolicy
from healthkit.scenario import isolated_world, shadowed_tables
from tests.factories import ResidentFactory
from tests.factories.healthkit import LocalCaseFactory, StayFactory, cst
from tests.factories.venues import RiskWindowFactory, VenueFactory, VenueScanFactory
from venues import exposure
from venues.models import RiskWindow

pytestmark = pytest.mark.django_db

ID_NUMBER = "110105196001010017"


def _replay(tmp_path, events) -> list[dict]:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"resident": {"name": "张三", "id_number": ID_NUMBER}, "events": events}))
    out = io.StringIO()
    call_command("replay_scenario", str(path), stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _popups(lines) -> list[list[int]]:
    return [line["active_popups"] for line in lines]


def _stored_state() -> dict[str, tuple[int, str]]:
    """Row count and a digest of every row of every table a scenario could reach."""
    state = {}
    with connection.cursor() as cursor:
        for table in [*shadowed_tables(), PopupPolicy._meta.db_table]:
            cursor.execute(f'SELECT count(*), md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) '  # noqa: S608
                           f'FROM "{table}" t')
            state[table] = cursor.fetchone()
    return state


STAY_THEN_CHECKS = [
    {"at": "2022-07-11T08:00:00+08:00", "type": "stay", "county": "420111",
     "from": "2022-07-08T09:00:00+08:00", "to": "2022-07-10T18:00:00+08:00"},
    {"at": "2022-07-12T10:00:00+08:00", "type": "check"},
]


def test_local_case_stored_outside_the_scenario_does_not_raise_type_1(tmp_path):
    # given a local case in the scenario's county, stored in the database but not in the file
    LocalCaseFactory(county="420111", reported_at=cst(2022, 7, 11, 9))
    # when the scenario (a stay there, no local_case event) is replayed; then no popup 1
    assert _popups(_replay(tmp_path, STAY_THEN_CHECKS)) == [[]]
    # while the same case in the file does raise it
    with_case = [STAY_THEN_CHECKS[0], {"at": "2022-07-11T09:00:00+08:00", "type": "local_case", "county": "420111"},
                 STAY_THEN_CHECKS[1]]
    assert _popups(_replay(tmp_path, with_case)) == [[1]]


def test_risk_window_stored_outside_the_scenario_does_not_raise_type_3(tmp_path):
    # given a stored venue marked a risk point 10:00-14:00
    venue = VenueFactory()
    RiskWindowFactory(venue=venue, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 14))
    # when the scenario scans that venue's code inside the stored window; then no popup 3
    events = [{"at": "2022-09-01T12:00:00+08:00", "type": "venue_scan", "venue": venue.code},
              {"at": "2022-09-01T12:05:00+08:00", "type": "check"}]
    assert _popups(_replay(tmp_path, events)) == [[]]
    # while the same window in the file does raise it
    marked = [*events[:1], {"at": "2022-09-01T12:01:00+08:00", "type": "venue_risk", "venue": venue.code,
                            "from": "2022-09-01T10:00:00+08:00", "to": "2022-09-01T14:00:00+08:00"}, events[1]]
    assert _popups(_replay(tmp_path, marked)) == [[3]]


def test_stored_scans_and_due_windows_are_not_run_by_a_scenario(tmp_path, monkeypatch):
    # given a stored risk window marked due, with scans of registered residents inside it
    stored_venue = VenueFactory()
    RiskWindowFactory(venue=stored_venue, exposure_due=True)
    for _ in range(3):
        VenueScanFactory(venue=stored_venue, scanned_at=cst(2022, 9, 1, 12))
    runs = []
    real_run = exposure.exposure_run

    def spy(*, window_id, at=None):
        window = RiskWindow.objects.select_related("venue").get(pk=window_id)
        result = real_run(window_id=window_id, at=at)
        runs.append((window.venue.code, result.visitors))
        return result

    monkeypatch.setattr(exposure, "exposure_run", spy)
    # when a scenario marks its own venue and scans there
    events = [{"at": "2022-09-01T12:00:00+08:00", "type": "venue_scan", "venue": "VSCENARIO1"},
              {"at": "2022-09-01T12:30:00+08:00", "type": "venue_risk", "venue": "VSCENARIO1",
               "from": "2022-09-01T10:00:00+08:00", "to": "2022-09-01T14:00:00+08:00"},
              {"at": "2022-09-01T12:31:00+08:00", "type": "check"}]
    assert _popups(_replay(tmp_path, events)) == [[3]]
    # then the exposure job saw only the scenario's window and its one visitor
    assert runs == [("VSCENARIO1", 1)]


def test_replay_leaves_every_stored_row_as_it_was(tmp_path):
    # given stored signals, popups, a due risk window with scans, for a resident with the
    # scenario's own ID number too
    registered = ResidentFactory(id_number=ID_NUMBER)
    StayFactory(resident=registered, county="420111")
    LocalCaseFactory(county="420111")
    PopupCase.objects.create(resident=registered, popup_type=3, source="upstream", cause={}, raised_at=cst(2022, 7, 1))
    window = RiskWindowFactory(exposure_due=True)
    VenueScanFactory(venue=window.venue)
    before = _stored_state()
    # when a scenario touching every kind of event is replayed
    events = [*STAY_THEN_CHECKS,
              {"at": "2022-07-12T11:00:00+08:00", "type": "local_case", "county": "420111"},
              {"at": "2022-07-12T12:00:00+08:00", "type": "popup_assignment", "popup_type": 3, "reason": "时空伴随"},
              {"at": "2022-07-12T13:00:00+08:00", "type": "venue_scan", "venue": window.venue.code},
              {"at": "2022-07-12T14:00:00+08:00", "type": "venue_risk", "venue": window.venue.code,
               "from": "2022-07-12T12:00:00+08:00", "to": "2022-07-12T14:00:00+08:00"},
              {"at": "2022-07-12T15:00:00+08:00", "type": "check"}]
    assert _popups(_replay(tmp_path, events)) == [[], [1, 3]]
    # then every stored row is unchanged, and no shadow table outlives the replay
    assert _stored_state() == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema() "
                       "AND relname = ANY(%s)", [shadowed_tables()])
        assert cursor.fetchone()[0] == 0


def test_the_rules_in_force_are_the_stored_policies(tmp_path):
    events = [{"at": "2022-06-01T09:00:00+08:00", "type": "arrival", "county": "310115"},
              {"at": "2022-06-02T10:00:00+08:00", "type": "check"}]
    assert _popups(_replay(tmp_path, events)) == [[]]  # 72 hours to get tested
    # given the stored type-4 policy shortened to 24 hours; then the scenario follows it
    policy = PopupPolicy.objects.get(popup_type=4, effective_to__isnull=True)
    policy.params = {**policy.params, "deadline_hours": 24}
    policy.save()
    assert _popups(_replay(tmp_path, events)) == [[4]]


def test_shadows_hold_the_unique_index_the_engine_relies_on():
    resident = ResidentFactory()
    with transaction.atomic():
        with isolated_world() as names:
            assert "healthkit_popupcase" in names and "healthkit_popuppolicy" not in names
            assert PopupPolicy.objects.exists() and not LocalCase.objects.exists()
            PopupCase.objects.create(resident_id=resident.pk, popup_type=1, source="engine", cause={},
                                     raised_at=cst(2022, 7, 1))
            with pytest.raises(IntegrityError), transaction.atomic():
                PopupCase.objects.create(resident_id=resident.pk, popup_type=1, source="engine", cause={},
                                         raised_at=cst(2022, 7, 2))
        transaction.set_rollback(True)
    assert not PopupCase.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_isolation_holds_with_server_side_prepared_statements(tmp_path):
    # given a connection configured to prepare every statement (OPTIONS server_side_binding and
    # prepare_threshold=0) whose session already has a temporary schema, and a stored popup of
    # resident 1 (the id the scenario's resident gets in its shadow table), whose health code
    # the connection has already read with those very statements
    from django.db.backends.postgresql.base import ServerBindingCursor

    from healthkit import engine
    from healthkit.selectors import health_code_at

    at = cst(2022, 7, 12, 10)
    stored = ResidentFactory(id=1)
    PopupCase.objects.create(resident=stored, popup_type=3, source="upstream", cause={}, raised_at=cst(2022, 7, 1))
    connection.ensure_connection()
    raw = connection.connection
    saved = raw.cursor_factory, raw.prepare_threshold
    raw.cursor_factory, raw.prepare_threshold = ServerBindingCursor, 0
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE IF NOT EXISTS scenario_test_marker (x int)")
        for _ in range(2):
            engine.evaluate(resident_ids=[stored.pk], at=at)
            assert health_code_at(stored, at).popup_types == [3]
        # when a scenario of one check at that instant is replayed; then the stored popup is not its
        assert _popups(_replay(tmp_path, [{"at": at.isoformat(), "type": "check"}])) == [[]]
    finally:
        raw.cursor_factory, raw.prepare_threshold = saved
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS scenario_test_marker")


def test_isolated_world_refuses_to_nest():
    with transaction.atomic():
        with isolated_world(), pytest.raises(RuntimeError, match="already active"), isolated_world():
            pass
        transaction.set_rollback(True)
