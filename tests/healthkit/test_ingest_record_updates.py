"""A stay or a quarantine order sent again with newer facts changes the record instead of being
a duplicate or a second row: a stay sent open ("still there") and later with its end is closed,
so popups 1 and 5 can lift by time; a quarantine order's end can be moved. A late retry of the
open stay never reopens it."""

import pytest
from django.utils import translation

from healthkit import clock, engine, ingest
from healthkit.models import QuarantineOrder, Stay
from tests.factories import ResidentFactory
from tests.factories.healthkit import cst
from tests.healthkit.engine_helpers import active_at

pytestmark = pytest.mark.django_db


def _send(kind, records, at):
    with clock.frozen_at(at):
        return ingest.ingest(kind=kind, records=records, evaluate=False)


def _stay(number, end=None, **extra):
    return {"id_number": number, "county": "533102", "from": "2022-05-01T09:00:00+08:00",
            "to": end, "border_port": True, **extra}


@pytest.mark.parametrize("extra", [{}, {"record_id": "stay-77"}], ids=["content key", "record id"])
def test_an_open_stay_is_closed_by_the_same_stay_with_its_end(extra):
    resident = ResidentFactory()
    number = resident.reveal_id_number()
    first = _send("stays", [_stay(number, **extra)], cst(2022, 5, 2))
    assert (first.accepted, first.updated) == (1, 0)
    assert active_at(resident, cst(2022, 5, 2, 12)) == [5]

    closed = _send("stays", [_stay(number, "2022-05-03T18:00:00+08:00", **extra)], cst(2022, 5, 4))
    assert (closed.accepted, closed.updated, closed.duplicates) == (0, 1, 0)
    assert closed.resident_ids == [resident.pk]
    stay = Stay.objects.get()
    assert stay.ended_at == cst(2022, 5, 3, 18)
    assert active_at(resident, cst(2022, 5, 17, 17)) == [5]  # 14 days after leaving: not yet
    assert active_at(resident, cst(2022, 5, 17, 18)) == []

    again = _send("stays", [_stay(number, "2022-05-03T18:00:00+08:00", **extra)], cst(2022, 5, 18))
    stale = _send("stays", [_stay(number, **extra)], cst(2022, 5, 18))  # a late retry of the open one
    assert (again.duplicates, again.updated, stale.duplicates, stale.updated) == (1, 0, 1, 0)
    stay.refresh_from_db()
    assert stay.ended_at == cst(2022, 5, 3, 18)


def test_a_key_reused_for_another_resident_changes_nothing_and_is_reported_as_a_conflict():
    one, other = ResidentFactory(), ResidentFactory()
    _send("stays", [_stay(one.reveal_id_number(), record_id="k-1")], cst(2022, 5, 2))
    with translation.override("en"):
        out = _send("stays", [_stay(other.reveal_id_number(), "2022-05-03T18:00:00+08:00", record_id="k-1")],
                    cst(2022, 5, 4))
    assert (out.accepted, out.updated, out.duplicates) == (0, 0, 0)
    assert out.rejected == [{"index": 0, "errors": {
        "record_id": "Conflict: this record id is already used for another resident."}}]
    assert Stay.objects.get().ended_at is None


def test_a_quarantine_order_can_be_shortened():
    resident = ResidentFactory()
    number = resident.reveal_id_number()
    order = {"id_number": number, "from": "2022-06-01T10:00:00+08:00", "to": "2022-06-15T10:00:00+08:00"}
    _send("quarantine_orders", [order], cst(2022, 6, 1, 11))
    assert active_at(resident, cst(2022, 6, 5)) == [2]
    out = _send("quarantine_orders", [{**order, "to": "2022-06-08T10:00:00+08:00"}], cst(2022, 6, 6))
    assert (out.accepted, out.updated) == (0, 1)
    assert QuarantineOrder.objects.get().ends_at == cst(2022, 6, 8, 10)
    engine.evaluate(resident_ids=[resident.pk], at=cst(2022, 6, 8, 23))
    assert active_at(resident, cst(2022, 6, 8, 23)) == [2]
    assert active_at(resident, cst(2022, 6, 9)) == []  # 00:00 the day after the (new) end


def test_the_last_of_a_key_in_one_batch_wins():
    resident = ResidentFactory()
    number = resident.reveal_id_number()
    out = _send("stays", [_stay(number), _stay(number, "2022-05-03T18:00:00+08:00")], cst(2022, 5, 4))
    assert (out.accepted, out.duplicates) == (1, 1)
    assert Stay.objects.get().ended_at == cst(2022, 5, 3, 18)
