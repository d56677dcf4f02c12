"""The parallel first run's two halves skip the per-statement reference checks of their popups,
events and exposure rows, as the one statement does, because both transactions hold the
parents (healthkit_references_hold before reading them). A parent delete must still wait for
the job and then refuse, also while the second half has committed and the leader has not, and
a delete pending when the job starts must leave no popup without its resident."""

import time

import psycopg
import pytest
from django.db import connection

from communities.models import Resident
from healthkit.models import PopupCase
from tests.venues.parallel_helpers import RUN_AT, job_in_thread, window_with_visitors
from venues import exposure
from venues.exposure import exposure_run
from venues.models import Exposure

pytestmark = pytest.mark.django_db(transaction=True)


def _other_session() -> psycopg.Connection:
    other = connection.get_new_connection(connection.get_connection_params())
    other.autocommit = True
    return other


def _delete_resident(session: psycopg.Connection, resident_id: int) -> None:
    """A resident's erasure: their phones and scans, then the resident (whose delete guards lock the
    popups' tables)."""
    session.execute("BEGIN")
    try:
        session.execute("DELETE FROM communities_residentphone WHERE resident_id = %s", [resident_id])
        session.execute("DELETE FROM venues_venuescan WHERE resident_id = %s", [resident_id])
        session.execute("DELETE FROM communities_resident WHERE id = %s", [resident_id])
    except psycopg.Error:
        session.execute("ROLLBACK")
        raise
    session.execute("COMMIT")


def test_deletes_wait_while_the_second_half_has_committed_and_then_refuse(parallel, monkeypatch):
    # given a parallel first run stopped between the second half's commit and its own
    window, residents = window_with_visitors()
    announce, seen = exposure._announce, {}

    def meanwhile(**kwargs):
        with _other_session() as other:
            other.execute("SET lock_timeout = '300ms'")
            # the committed half, as another session sees it
            case_id, resident_id = other.execute(
                "SELECT id, resident_id FROM healthkit_popupcase ORDER BY id LIMIT 1").fetchone()
            seen.update(case=case_id, resident=resident_id)
            # when another session deletes one of its popups, or its resident, each waits
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM healthkit_popupcase WHERE id = %s", [case_id])
            with pytest.raises(psycopg.errors.LockNotAvailable):
                _delete_resident(other, resident_id)
        return announce(**kwargs)

    monkeypatch.setattr(exposure, "_announce", meanwhile)
    result = exposure_run(window_id=window.pk, at=RUN_AT)
    assert parallel == [True] and result.raised == len(residents)
    assert seen["resident"] % 2 == 0  # a popup of the second connection's half
    # then, once the job committed, both deletes refuse
    with _other_session() as other:
        with pytest.raises(psycopg.errors.IntegrityError):
            other.execute("DELETE FROM healthkit_popupcase WHERE id = %s", [seen["case"]])
        with pytest.raises(psycopg.errors.IntegrityError):
            _delete_resident(other, seen["resident"])
    assert PopupCase.objects.filter(pk=seen["case"]).exists()
    assert Resident.objects.filter(pk=seen["resident"]).exists()


def test_a_resident_delete_pending_when_the_job_starts_leaves_no_popup_without_its_resident(parallel):
    # given a visitor of each half being erased by another session, not committed yet
    window, residents = window_with_visitors()
    gone = [next(r.pk for r in residents if r.pk % 2 == parity) for parity in (0, 1)]
    outcome: dict = {}

    with _other_session() as other, _other_session() as watcher:
        other.execute("BEGIN")
        other.execute("DELETE FROM communities_residentphone WHERE resident_id = ANY(%s)", [gone])
        other.execute("DELETE FROM venues_venuescan WHERE resident_id = ANY(%s)", [gone])
        other.execute("DELETE FROM communities_resident WHERE id = ANY(%s)", [gone])
        # when the job starts meanwhile, it waits before it reads anything; then the erasure commits
        thread = job_in_thread(window.pk, outcome)
        deadline = time.monotonic() + 10
        while not watcher.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0]:
            assert time.monotonic() < deadline, "the job never waited for the pending erasure"
            time.sleep(0.02)
        other.execute("COMMIT")
        thread.join(30)
    # then the job went parallel and raised the others only; no row names an erased resident
    assert "error" not in outcome, outcome
    assert outcome["result"].raised == len(residents) - 2
    assert parallel == [True]
    assert not PopupCase.objects.filter(resident_id__in=gone).exists()
    assert not Exposure.objects.filter(resident_id__in=gone).exists()
