"""The one-statement exposure run (re-runs, corrections, small windows, any fallback) probes the
open popups of the window's key once per visitor, by resident, whatever the statistics say: as a
join, with the visitors estimated at one row, the planner may read every open popup 3 of every
window once per visitor (a 10 M-scan first run took 173 s on a new database)."""

import re

import pytest
from django.db import connection, transaction

from healthkit.selectors import policy_in_force
from tests.venues.parallel_helpers import RUN_AT, window_with_visitors
from venues import exposure
from venues.exposure import exposure_run

pytestmark = pytest.mark.django_db(transaction=True)  # VACUUM runs outside a transaction


def _plan(window) -> str:
    params = exposure._statement_params(window=window, policy=policy_in_force(3, RUN_AT), at=RUN_AT, batch=True,
                                        batch_key="k")
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in exposure._HALF_SETTINGS:  # as _exposure_statement runs it
            cursor.execute(setting)
        cursor.execute("EXPLAIN " + exposure._EXPOSURE, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


@pytest.mark.parametrize("statistics", ["ANALYZE", "VACUUM"])
def test_the_one_statement_probes_open_popups_once_per_visitor_by_its_resident(statistics):
    # given open popups 3 of another window, and statistics taken (or a vacuum's counts)
    window, _residents = window_with_visitors()
    other, _others = window_with_visitors()
    exposure_run(window_id=other.pk, at=RUN_AT)
    with connection.cursor() as cursor:
        cursor.execute(f"{statistics} healthkit_popupcase")
    # when the one statement is planned as the job runs it
    plan = _plan(window)
    # then the probe is a look-up per visitor by resident, never a join that could read every open
    # popup 3 once per visitor
    assert re.search(r"NOT (EXISTS)?\(SubPlan", plan) and re.search(r"resident_id = h(_\d+)?\.resident_id", plan), plan
    assert "popup_open_type_idx" not in plan, plan
    # and no table of popups or exposures is read whole (once per visitor, that is quadratic)
    assert "Seq Scan on healthkit_popupcase" not in plan, plan
    assert "Seq Scan on venues_exposure" not in plan, plan
