"""The job waits for its second half in Python, where PostgreSQL's deadlock detector cannot see
the wait. A parent delete that queued behind the job's locks before the second half asked for its
own would make that half queue behind the delete: the three would wait for each other until the
worker's hard time limit. The second half gives up instead (venues.exposure._HALF_LOCK_WAIT), the
run falls back to one statement, and the delete waits for the job as it always did."""

import threading
import time

import psycopg
import pytest
from django.db import connection

from healthkit import second_connection
from healthkit.models import PopupCase
from tests.venues.parallel_helpers import job_in_thread, window_with_visitors

pytestmark = pytest.mark.django_db(transaction=True)


def _session() -> psycopg.Connection:
    session = connection.get_new_connection(connection.get_connection_params())
    session.autocommit = True
    return session


def test_a_delete_queued_behind_the_job_does_not_stall_it(parallel, monkeypatch):
    # given a window large enough for the parallel path
    window, residents = window_with_visitors()
    deleter, watcher = _session(), _session()
    deleter_pid = deleter.info.backend_pid
    outcome: dict = {}

    def popup_delete_guard():
        # a popup delete's guard: SHARE on the events table, which waits for the job's transaction
        try:
            deleter.execute("BEGIN")
            deleter.execute("LOCK TABLE healthkit_popupevent IN SHARE MODE")
            outcome["popups_when_delete_locked"] = deleter.execute(
                "SELECT count(*) FROM healthkit_popupcase WHERE dedupe_key = %s", [window.dedupe_key]).fetchone()[0]
            deleter.execute("ROLLBACK")
        except psycopg.Error as exc:
            outcome["delete_error"] = exc

    real = second_connection.second_connection

    def queued_then_connect():
        # when such a delete queues behind the job's locks just before the second half starts
        threading.Thread(target=popup_delete_guard, daemon=True).start()
        deadline = time.monotonic() + 10
        while not watcher.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = %s",
                                  [deleter_pid]).fetchone()[0]:
            assert time.monotonic() < deadline, "the delete never queued behind the job"
            time.sleep(0.02)
        return real()

    monkeypatch.setattr(second_connection, "second_connection", queued_then_connect)

    thread = job_in_thread(window.pk, outcome)
    thread.join(20)
    stalled = thread.is_alive()
    if stalled:  # break the wait cycle so that the test ends, then fail
        watcher.execute("SELECT pg_cancel_backend(%s)", [deleter_pid])
        thread.join(30)
    time.sleep(0.2)
    deleter.close()
    watcher.close()
    # then the job did not stall: it ran as one statement, raised every visitor, committed first
    assert not stalled, "the job and its second half waited for each other behind the delete"
    assert "error" not in outcome, outcome
    assert parallel == [False]
    assert outcome["result"].raised == len(residents)
    assert PopupCase.objects.filter(dedupe_key=window.dedupe_key, state="active").count() == len(residents)
    # and the delete got its lock only once the job had committed (it saw every popup raised)
    assert outcome["popups_when_delete_locked"] == len(residents)
