"""Rule 3: raised by an upstream assignment (with its reason); never lifted automatically,
only a community decision lifts it; a retried assignment does not raise it again."""

import datetime as dt

import pytest

from healthkit import clock, engine, ingest
from healthkit.models import PopupAssignment, PopupEvent
from healthkit.services import popup_lift
from tests.factories import ResidentFactory
from tests.factories.healthkit import PopupAssignmentFactory, cst
from tests.healthkit.engine_helpers import active_at, cases

pytestmark = pytest.mark.django_db
ASSIGNED = cst(2022, 9, 1, 8)


def test_assignment_raises_type_3_with_its_reason_and_records():
    assignment = PopupAssignmentFactory(assigned_at=ASSIGNED, reason="时空伴随")
    resident = assignment.resident
    assert active_at(resident, ASSIGNED - dt.timedelta(seconds=1)) == []
    assert active_at(resident, ASSIGNED) == [3]
    (case,) = cases(resident, 3)
    assert (case.source, case.raised_at, case.cause["reason"]) == ("upstream", ASSIGNED, "时空伴随")
    raised = case.events.get(kind=PopupEvent.Kind.RAISED)
    assert raised.data["records"] == [{"popup_assignment": assignment.pk}]
    assert raised.data["policy"] == "2022-02-12"
    assignment.refresh_from_db()
    assert assignment.case_id == case.pk


def test_never_lifted_by_the_engine_or_the_sweep():
    assignment = PopupAssignmentFactory(assigned_at=ASSIGNED)
    engine.evaluate(resident_ids=[assignment.resident_id], at=ASSIGNED)
    engine.sweep(at=ASSIGNED + dt.timedelta(days=60))
    assert active_at(assignment.resident, ASSIGNED + dt.timedelta(days=90)) == [3]


def test_community_lift_sticks_and_a_retried_assignment_does_not_raise_again():
    resident = ResidentFactory(id_number="110105196001010017")
    record = {"id_number": "110105196001010017", "popup_type": 3, "reason": "时空伴随",
              "assigned_at": ASSIGNED.isoformat(), "record_id": "bd-77"}
    with clock.frozen_at(ASSIGNED):  # received when assigned
        ingest.ingest(kind="popup_assignments", records=[record], evaluate=False)
    assert active_at(resident, ASSIGNED + dt.timedelta(hours=1)) == [3]
    (case,) = cases(resident, 3)
    popup_lift(case=case, actor_label="community", reason="核实误判", at=ASSIGNED + dt.timedelta(days=2))
    result = ingest.ingest(kind="popup_assignments", records=[record], evaluate=False)
    assert result.duplicates == 1
    assert active_at(resident, ASSIGNED + dt.timedelta(days=3)) == []
    assert PopupAssignment.objects.filter(resident=resident).count() == 1
    # A new assignment (a new match) is a new popup.
    with clock.frozen_at(ASSIGNED + dt.timedelta(days=4)):
        ingest.ingest(kind="popup_assignments", records=[{**record, "record_id": "bd-78"}], evaluate=False)
    assert active_at(resident, ASSIGNED + dt.timedelta(days=4)) == [3]
    assert [c.state for c in cases(resident, 3)] == ["lifted", "active"]


def test_only_type_3_may_be_assigned_upstream():
    resident = ResidentFactory(id_number="110105196001010017")
    result = ingest.ingest(kind="popup_assignments", records=[{
        "id_number": "110105196001010017", "popup_type": 4, "reason": "x", "assigned_at": ASSIGNED.isoformat()}])
    assert [r["index"] for r in result.rejected] == [0]
    assert cases(resident, 4) == []


def test_the_popup_type_is_read_like_every_integer_of_the_api():
    """"3" is 3 (docs/inputs.md: a string of digits is accepted), a boolean or a float never is."""
    ResidentFactory(id_number="110105196001010017")
    record = {"id_number": "110105196001010017", "reason": "时空伴随", "assigned_at": ASSIGNED.isoformat()}
    with clock.frozen_at(ASSIGNED):
        result = ingest.ingest(kind="popup_assignments", evaluate=False, records=[
            {**record, "popup_type": "3", "record_id": "a"}, {**record, "popup_type": 3.0, "record_id": "b"},
            {**record, "popup_type": True, "record_id": "c"}, {**record, "popup_type": "3e0", "record_id": "d"}])
    assert (result.accepted, [r["index"] for r in result.rejected]) == (1, [1, 2, 3])
