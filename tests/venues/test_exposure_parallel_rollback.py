"""A parallel first run whose either half fails before the second half committed leaves
nothing behind: no popup, event, exposure row, outbox record or pending trace, and the window
still due; the next run raises everyone."""

import time

import pytest
from django.db import DataError, connection

from healthkit import second_connection
from healthkit.models import OutboxRecord, PopupCase, PopupEvent
from tests.venues.parallel_helpers import RUN_AT, raised_announcements, window_with_visitors
from venues import exposure
from venues.exposure import exposure_run
from venues.models import Exposure, ExposurePending, RiskWindow

pytestmark = pytest.mark.django_db(transaction=True)


def _nothing_written(window) -> bool:
    return not (PopupCase.objects.exists() or PopupEvent.objects.exists() or Exposure.objects.exists()
                or OutboxRecord.objects.exists() or ExposurePending.objects.exists()
                or not RiskWindow.objects.get(pk=window.pk).exposure_due)


def _no_other_session_left_in_a_transaction(seconds: float = 5) -> bool:
    """The second half's session ended or idle: nothing of it can commit later, and it holds no
    lock or uncommitted popup a retry would wait for."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND state <> 'idle'")
            if not cursor.fetchone()[0]:
                return True
        time.sleep(0.05)
    return False


def test_the_second_half_failing_rolls_back_both_and_the_retry_raises_all(parallel, monkeypatch):
    # given a second connection whose half fails on the server
    window, residents = window_with_visitors()
    sent = second_connection.send_in_background
    monkeypatch.setattr(second_connection, "send_in_background", lambda query, pgconn: sent(b"SELECT 1 / 0", pgconn))
    # when the first run goes parallel, it fails
    with pytest.raises(DataError):
        exposure_run(window_id=window.pk, at=RUN_AT)
    # then nothing of either half is left
    assert _nothing_written(window)
    assert _no_other_session_left_in_a_transaction()
    # and the next run raises everyone, announced once
    monkeypatch.setattr(second_connection, "send_in_background", sent)
    result = exposure_run(window_id=window.pk, at=RUN_AT)
    assert parallel == [True]  # the failed run raised before the spy could note its way
    assert result.raised == len(residents) and result.batch and result.deliveries == 2
    assert raised_announcements() == sorted(PopupCase.objects.values_list("pk", flat=True))


def test_the_leaders_half_failing_rolls_back_the_second_half_too(parallel, monkeypatch):
    # given a statement that fails on the job's own connection only (the leader's half, odd ids)
    window, residents = window_with_visitors()
    statement = exposure._RAISE_HALF
    monkeypatch.setattr(exposure, "_RAISE_HALF", statement.replace(
        "FROM w WHERE %(marker)s", "FROM w WHERE %(marker)s OR 1 / (1 - %(half)s) = 0"))
    # when the first run goes parallel, it fails
    with pytest.raises(DataError):
        exposure_run(window_id=window.pk, at=RUN_AT)
    # then the second connection's half, written or not, did not commit and cannot
    assert _nothing_written(window)
    assert _no_other_session_left_in_a_transaction()
    monkeypatch.setattr(exposure, "_RAISE_HALF", statement)
    assert exposure_run(window_id=window.pk, at=RUN_AT).raised == len(residents)
    assert parallel == [True]
