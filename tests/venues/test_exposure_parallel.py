"""A large first run of a risk window raises its popups in two halves at once, on the job's
connection and a second one (venues.exposure._parallel_first_run). It must give the same
result and write the same rows as the one statement; every other run, a small window, a run
inside a caller's transaction and a run without a second connection take the one statement."""

import re

import psycopg
import pytest
from django.db import connection, transaction

from healthkit import second_connection
from healthkit.models import OutboxDelivery, OutboxRecord, PopupCase, PopupEvent
from healthkit.selectors import policy_in_force
from tests.venues.parallel_helpers import (
    RUN_AT,
    batch_lists_in_case_order,
    raised_announcements,
    rows,
    window_with_visitors,
)
from venues import exposure
from venues.exposure import exposure_run
from venues.models import Exposure, ExposurePending, RiskWindow, RiskWindowEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _undo_first_run(window: RiskWindow) -> None:
    OutboxDelivery.objects.all().delete()
    OutboxRecord.objects.all().delete()
    Exposure.objects.all().delete()
    PopupEvent.objects.all().delete()
    PopupCase.objects.all().delete()
    RiskWindowEvent.objects.filter(kind=RiskWindowEvent.Kind.EXPOSURE).delete()
    RiskWindow.objects.filter(pk=window.pk).update(exposure_due=True)


@pytest.fixture
def database_time_zone_not_djangos():
    """New sessions of the test database start in another time zone than the one Django sets
    on its own (UTC): the causes' instants, rendered as text, must not follow the session."""
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" SET timezone = \'Asia/Shanghai\'')
    yield
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" RESET timezone')


def test_a_parallel_first_run_gives_the_same_result_and_rows_as_one_statement(
        parallel, settings, database_time_zone_not_djangos):
    # given a window with visitors of both halves
    window, residents = window_with_visitors()
    # when its first run takes the parallel path
    on = exposure_run(window_id=window.pk, at=RUN_AT)
    assert parallel == [True]
    written = rows()
    # and the same first run is made again with the parallel path off
    _undo_first_run(window)
    settings.EXPOSURE_PARALLEL_MIN = 0
    off = exposure_run(window_id=window.pk, at=RUN_AT)
    # then the result and every row are the same
    assert parallel == [True]
    assert on == off
    assert rows() == written
    assert on.raised == on.visitors == len(residents) and on.deliveries == 2
    assert on.batch == f"window-{window.pk}-v1-raised"
    assert raised_announcements() == sorted(PopupCase.objects.values_list("pk", flat=True))
    assert not ExposurePending.objects.exists()


def test_the_batch_of_a_parallel_first_run_lists_both_halves_in_case_order(parallel):
    window, residents = window_with_visitors()
    exposure_run(window_id=window.pk, at=RUN_AT)
    assert parallel == [True]
    assert batch_lists_in_case_order()
    assert raised_announcements() == sorted(PopupCase.objects.values_list("pk", flat=True))


def test_a_re_run_after_a_parallel_first_run_changes_nothing(parallel):
    window, _residents = window_with_visitors()
    exposure_run(window_id=window.pk, at=RUN_AT)
    written = rows()
    again = exposure_run(window_id=window.pk, at=RUN_AT)
    assert parallel == [True]  # the re-run is not a first run: one statement
    assert not again.changed and again.visitors == 8
    assert rows() == written


def test_a_small_window_takes_one_statement(parallel, settings):
    settings.EXPOSURE_PARALLEL_MIN = 100
    window, residents = window_with_visitors()
    result = exposure_run(window_id=window.pk, at=RUN_AT)
    assert parallel == []
    assert result.raised == len(residents) and result.batch


def test_without_a_second_connection_the_run_takes_one_statement(parallel, monkeypatch):
    # given a database that refuses a further connection
    def refused():
        raise psycopg.OperationalError("too many clients already")

    monkeypatch.setattr(second_connection, "second_connection", refused)
    window, residents = window_with_visitors()
    # when the first run would go parallel, it falls back to the one statement and raises all
    result = exposure_run(window_id=window.pk, at=RUN_AT)
    assert parallel == [False]
    assert result.raised == len(residents) and result.deliveries == 2 and result.batch
    assert raised_announcements() == sorted(PopupCase.objects.values_list("pk", flat=True))
    assert not ExposurePending.objects.exists()


def test_inside_a_callers_transaction_the_run_takes_one_statement(parallel):
    # the second connection could not see the caller's uncommitted rows, nor roll back with them
    window, residents = window_with_visitors()
    with transaction.atomic():
        result = exposure_run(window_id=window.pk, at=RUN_AT)
    assert parallel == []
    assert result.raised == len(residents)


def test_a_half_never_probes_open_popups_by_a_scan_of_the_popup_table(parallel):
    # given popup statistics that say the table is empty (a new database, or vacuumed after a purge)
    window, _residents = window_with_visitors()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM healthkit_popupcase")
    policy = policy_in_force(3, RUN_AT)
    params = exposure._statement_params(window=window, policy=policy, at=RUN_AT, batch=True, batch_key="k")
    # when a half's statement is planned with the halves' settings
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in exposure._HALF_SETTINGS:
            cursor.execute(setting)
        cursor.execute("EXPLAIN " + exposure._RAISE_HALF, {**params, "half": 0, "marker": True})
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    # then the open popups of the window's key are not found by a scan of the whole table per
    # visitor (which, while the other half inserts, would read its rows too: quadratic)
    assert "Seq Scan on healthkit_popupcase" not in plan, plan


def test_the_announcement_never_reads_popups_or_exposure_rows_by_a_scan_of_their_table(parallel):
    # given popup and exposure statistics that say the tables are nearly empty
    window, _residents = window_with_visitors()
    exposure_run(window_id=window.pk, at=RUN_AT)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM healthkit_popupcase")
        cursor.execute("VACUUM venues_exposure")
    params = {"window": window.pk, "version": 1, "batch_key": "k", "policy_version": "p", "instants": [RUN_AT],
              "batch": True, "fresh": False}
    # when the announcement is planned as the job runs it
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(exposure._PLAN_BY_INDEX)
        cursor.execute("EXPLAIN " + exposure._ANNOUNCE, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    # then neither table is scanned whole (once per exposure row, that is quadratic: minutes for 50 k)
    assert "Seq Scan on healthkit_popupcase" not in plan, plan
    assert "Seq Scan on venues_exposure" not in plan, plan


def test_a_half_probes_open_popups_once_per_visitor_by_its_resident(parallel):
    # given open popups 3 of another window, with statistics taken
    window, _residents = window_with_visitors()
    other, _others = window_with_visitors()
    exposure_run(window_id=other.pk, at=RUN_AT)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE healthkit_popupcase")
    params = exposure._statement_params(window=window, policy=policy_in_force(3, RUN_AT), at=RUN_AT, batch=True,
                                        batch_key="k")
    # when a half's statement is planned with the halves' settings
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in exposure._HALF_SETTINGS:
            cursor.execute(setting)
        cursor.execute("EXPLAIN " + exposure._RAISE_HALF, {**params, "half": 0, "marker": True})
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    # then the probe is a look-up per visitor by resident, never a join that could read every open
    # popup 3 once per visitor (a plan the planner chose at 10 M scans: more than 90 s)
    assert re.search(r"NOT (EXISTS)?\(SubPlan", plan) and "resident_id = h.resident_id" in plan, plan
    assert "popup_open_type_idx" not in plan, plan
