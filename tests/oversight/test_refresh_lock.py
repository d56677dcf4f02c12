"""Two summary refreshes never run at once: the every-minute one gives up while another holds
the lock (no pile-up behind a slow refresh), and runs again once it is free."""

import psycopg
import pytest
from django.db import connection

from appeals.oversight import services, tasks
from appeals.oversight.models import OpenPopupFigure, SummaryRefresh
from tests.factories import PopupCaseFactory, ResidentFactory

pytestmark = pytest.mark.django_db


def _other_session() -> psycopg.Connection:
    """A second session on the test database, connected exactly as Django connects (a TCP server
    or the embedded PostgreSQL's socket folder alike)."""
    other = connection.get_new_connection(connection.get_connection_params())
    other.autocommit = True
    return other


def test_minute_refresh_skips_while_another_runs():
    PopupCaseFactory(resident=ResidentFactory())
    with _other_session() as other:
        # another refresh is running (it holds the refresh lock)
        other.execute(services.LOCK_SQL.format(fn="pg_advisory_lock"))
        assert services.summary_refresh() is None
        assert tasks.summary_refresh() is None
        assert not SummaryRefresh.objects.exists() and not OpenPopupFigure.objects.exists()
        other.execute(services.LOCK_SQL.format(fn="pg_advisory_unlock"))
    # once it is done, the next minute's refresh runs
    assert services.summary_refresh() is not None
    assert sum(OpenPopupFigure.objects.values_list("n", flat=True)) == 1
