"""The exposure job skips the per-statement reference checks of its own popups, events and
exposure rows (healthkit 0026, venues 0005) because it holds their parents: it locks the tables
it writes before it reads the parents. These tests hold it to the same guarantees as the checks:
a parent deleted concurrently never leaves a row without it, and every other writer, in another
session or later in the same transaction, is still checked."""

import time

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from communities.models import Resident
from healthkit.models import PopupCase, PopupEvent, PopupPolicy
from tests.factories import ResidentFactory
from tests.factories.venues import RiskWindowFactory, VenueFactory, VenueScanFactory, cst
from tests.venues.parallel_helpers import job_in_thread
from venues.exposure import exposure_run
from venues.models import Exposure

pytestmark = pytest.mark.django_db
RUN_AT = cst(2022, 9, 2, 9)


def _other_session() -> psycopg.Connection:
    other = connection.get_new_connection(connection.get_connection_params())
    other.autocommit = True
    return other


def _window_with_visitors(count: int = 3):
    venue = VenueFactory()
    window = RiskWindowFactory(venue=venue, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 14))
    for _ in range(count):
        VenueScanFactory(venue=venue, resident=ResidentFactory(), scanned_at=cst(2022, 9, 1, 12))
    return window


def _missing_resident_id() -> int:
    return (Resident.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


def _wait_for_a_lock_wait(watcher: psycopg.Connection, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if watcher.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0]:
            return
        time.sleep(0.02)
    raise AssertionError("the job never waited for the pending delete")


@pytest.mark.django_db(transaction=True)
def test_policy_deleted_while_the_job_starts_leaves_no_popup_without_its_policy():
    # given a window with visitors, and another session deleting popup 3's policies (uncommitted)
    window = _window_with_visitors()
    outcome: dict = {}

    with _other_session() as other, _other_session() as watcher:
        other.execute("BEGIN")
        other.execute("DELETE FROM healthkit_popuppolicy WHERE popup_type = 3")
        # when the job starts meanwhile, it waits before it reads the policy; then the delete commits
        thread = job_in_thread(window.pk, outcome)
        _wait_for_a_lock_wait(watcher)
        other.execute("COMMIT")
        thread.join(30)

    # then the job saw the policy gone and raised nothing; no popup names a missing policy
    assert "error" not in outcome, outcome
    assert outcome["result"].skipped == "no_policy"
    assert not PopupCase.objects.exclude(policy_id__in=PopupPolicy.objects.values("pk")).exists()


@pytest.mark.django_db(transaction=True)
def test_delete_of_a_parent_waits_for_the_job_and_then_refuses():
    # given a job that raised popups and has not committed yet
    window = _window_with_visitors()
    with _other_session() as other:
        other.execute("SET lock_timeout = '300ms'")
        with transaction.atomic():
            assert exposure_run(window_id=window.pk, at=RUN_AT).raised == 3
            policy_id = PopupCase.objects.values_list("policy_id", flat=True).first()
            # when the policy its popups name is deleted meanwhile, the delete waits
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("DELETE FROM healthkit_popuppolicy WHERE id = %s", [policy_id])
        # then, once the job committed, the delete sees the popups and refuses
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            other.execute("DELETE FROM healthkit_popuppolicy WHERE id = %s", [policy_id])
    assert PopupPolicy.objects.filter(pk=policy_id).exists()
    assert PopupCase.objects.filter(policy_id=policy_id).count() == 3


def test_writes_after_the_job_in_the_same_transaction_are_checked_again():
    window = _window_with_visitors(1)
    missing = _missing_resident_id()
    with pytest.raises(IntegrityError), transaction.atomic():
        exposure_run(window_id=window.pk, at=RUN_AT)
        PopupCase.objects.create(resident_id=missing, popup_type=3, source="venue", raised_at=RUN_AT)
    with pytest.raises(IntegrityError), transaction.atomic():
        exposure_run(window_id=window.pk, at=RUN_AT)
        PopupEvent.objects.create(case_id=PopupCase.objects.order_by("-pk").first().pk + 1000, kind="note",
                                  at=RUN_AT)
    with pytest.raises(IntegrityError), transaction.atomic():
        exposure_run(window_id=window.pk, at=RUN_AT)
        case = PopupCase.objects.order_by("-pk").first()
        Exposure.objects.create(window=window, resident_id=missing, case=case, scanned_at=RUN_AT, raised_at=RUN_AT)


@pytest.mark.django_db(transaction=True)
def test_other_sessions_are_checked_while_the_job_holds_its_tables():
    window = _window_with_visitors(1)
    missing = _missing_resident_id()
    with _other_session() as other, transaction.atomic():
        exposure_run(window_id=window.pk, at=RUN_AT)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            other.execute("INSERT INTO healthkit_popupcase (resident_id, popup_type, dedupe_key, cause, source, "
                          "state, raised_at, updated_at) VALUES (%s, 3, '', '{}', 'venue', 'active', now(), now())",
                          [missing])


def test_a_table_held_is_not_a_licence_for_the_others():
    # given a transaction that holds only the exposure table
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT healthkit_references_hold('venues_exposure')")
        # then a popup naming a missing resident is still refused
        PopupCase.objects.create(resident_id=_missing_resident_id(), popup_type=3, source="venue",
                                 raised_at=RUN_AT)
