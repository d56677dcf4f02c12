"""The engine's popups, events, outbox records and deliveries skip their per-statement reference
checks (migrations 0026, 0027, 0029) because it holds their parents: it locks the tables it writes just before
its writing statement reads what they refer to, and releases them after it. These tests hold it
to the same guarantees as the checks: a parent deleted concurrently never loses a row referring
to it, and every later writer of the transaction, and every other session, is still checked."""

import datetime as dt

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from communities.models import Resident
from healthkit import engine
from healthkit.models import OutboxDelivery, OutboxRecord, PopupCase, PopupEvent, TestResult
from tests.factories import TestResultFactory
from tests.factories.healthkit import ArrivalFactory, DownstreamEndpointFactory, cst

pytestmark = pytest.mark.django_db
ARRIVED = cst(2022, 6, 1, 9)
RAISE_AT = ARRIVED + dt.timedelta(hours=80)
LIFT_AT = ARRIVED + dt.timedelta(hours=100)


def _other_session() -> psycopg.Connection:
    other = connection.get_new_connection(connection.get_connection_params())
    other.autocommit = True
    return other


def _lift_ready() -> PopupCase:
    """A type-4 popup raised, and a negative result received since: the next sweep lifts it."""
    resident = ArrivalFactory(arrived_at=ARRIVED).resident
    engine.evaluate(resident_ids=None, at=RAISE_AT)
    TestResultFactory(resident=resident, sampled_at=LIFT_AT - dt.timedelta(hours=3),
                      resulted_at=LIFT_AT - dt.timedelta(hours=1), received_at=LIFT_AT - dt.timedelta(hours=1),
                      result=TestResult.Outcome.NEGATIVE)
    return PopupCase.objects.get(resident=resident, popup_type=4)


def _delete_waits_for_the_sweep_then_refuses(table: str, pk: int, swept) -> None:
    """A sweep runs (`swept` checks its outcome) while another session deletes row `pk` of
    `table`: the delete waits for the sweep's transaction, then refuses."""
    with _other_session() as other:
        other.execute("SET lock_timeout = '300ms'")
        with transaction.atomic():
            assert swept(engine.evaluate(resident_ids=None, at=LIFT_AT))
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(f"DELETE FROM {table} WHERE id = %s", [pk])  # noqa: S608 - a constant of the tests
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            other.execute(f"DELETE FROM {table} WHERE id = %s", [pk])  # noqa: S608 - a constant of the tests


def _missing_resident_id() -> int:
    return (Resident.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


@pytest.mark.parametrize("resident_ids", [None, "listed"])
def test_writes_after_the_engine_in_the_same_transaction_are_checked_again(resident_ids):
    case = _lift_ready()
    ids = None if resident_ids is None else [case.resident_id]
    missing_case = PopupCase.objects.order_by("-pk").first().pk + 1000
    with pytest.raises(IntegrityError), transaction.atomic():
        assert engine.evaluate(resident_ids=ids, at=LIFT_AT).lifted == 1
        PopupEvent.objects.create(case_id=missing_case, kind="note", at=LIFT_AT)
    with pytest.raises(IntegrityError), transaction.atomic():
        engine.evaluate(resident_ids=ids, at=LIFT_AT)
        OutboxRecord.objects.create(case_id=missing_case, kind="lifted", idempotency_key=f"popup-{missing_case}-lifted",
                                    resident_id=case.resident_id, popup_type=4, at=LIFT_AT, payload={})
    with pytest.raises(IntegrityError), transaction.atomic():
        engine.evaluate(resident_ids=ids, at=LIFT_AT)
        PopupCase.objects.create(resident_id=_missing_resident_id(), popup_type=4, source="engine", raised_at=LIFT_AT)
    with pytest.raises(IntegrityError), transaction.atomic():
        DownstreamEndpointFactory()
        engine.evaluate(resident_ids=ids, at=LIFT_AT)
        record = OutboxRecord.objects.get(case=case, kind="lifted")
        OutboxDelivery.objects.create(record=record, endpoint_id=record.pk + 1000, resident_id=case.resident_id)
    with connection.cursor() as cursor, transaction.atomic():
        engine.evaluate(resident_ids=ids, at=LIFT_AT)
        cursor.execute("SELECT current_setting('healthkit.references_held', true)")
        assert cursor.fetchone()[0] in ("", None)
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
def test_delete_of_a_lifted_popup_waits_for_the_sweep_and_then_refuses():
    # given a sweep that lifted a popup (its event and outbox record written) and has not committed
    case = _lift_ready()
    # when the popup is deleted meanwhile, the delete waits; then, once the sweep committed, it
    # sees the event and the record and refuses
    _delete_waits_for_the_sweep_then_refuses("healthkit_popupcase", case.pk, lambda sweep: sweep.lifted == 1)
    assert PopupEvent.objects.filter(case=case, kind="lifted").count() == 1
    assert OutboxRecord.objects.filter(case=case, kind="lifted").count() == 1


@pytest.mark.django_db(transaction=True)
def test_other_sessions_are_checked_while_the_engine_holds_its_tables():
    case = _lift_ready()
    with _other_session() as other, transaction.atomic():
        engine.evaluate(resident_ids=None, at=LIFT_AT)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            other.execute("INSERT INTO healthkit_outboxrecord (idempotency_key, kind, case_id, resident_id, popup_type, "
                          "at, payload, created_at) VALUES ('', 'lifted', %s, %s, 4, now(), '{}', now())",
                          [case.pk + 1000, case.resident_id])


def _reference_checks_run(cursor) -> int:
    cursor.execute("SELECT coalesce(pg_stat_get_xact_function_calls('healthkit_refs_check'::regproc), 0)")
    return cursor.fetchone()[0]


@pytest.mark.parametrize("resident_ids", [None, "listed"])
def test_the_engine_runs_no_reference_check_for_its_deliveries(resident_ids):
    # given an active endpoint (so each change also writes a delivery) and a popup to lift
    DownstreamEndpointFactory()
    case = _lift_ready()
    ids = None if resident_ids is None else [case.resident_id]
    with connection.cursor() as cursor, transaction.atomic():
        cursor.execute("SET LOCAL track_functions = 'pl'")
        before = _reference_checks_run(cursor)
        # when the engine lifts it
        assert engine.evaluate(resident_ids=ids, at=LIFT_AT).deliveries == 1
        # then its popup, event, record and delivery were written without a per-statement check
        assert OutboxDelivery.objects.filter(record__case=case, record__kind="lifted").count() == 1
        assert _reference_checks_run(cursor) == before
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
def test_delete_of_an_endpoint_waits_for_the_sweep_and_then_refuses():
    # given a sweep that lifted a popup and wrote its delivery, not yet committed
    endpoint = DownstreamEndpointFactory()
    _lift_ready()
    # when the endpoint is deleted meanwhile, the delete waits; then, once the sweep committed, it
    # sees the delivery and refuses
    _delete_waits_for_the_sweep_then_refuses("healthkit_downstreamendpoint", endpoint.pk,
                                             lambda sweep: sweep.deliveries == 1)
    assert OutboxDelivery.objects.filter(endpoint=endpoint, record__kind="lifted").count() == 1
