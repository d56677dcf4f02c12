"""TestRequirement (screening, investigation, checkpoint): popup 4 at its own deadline unless a
negative result sampled after the trigger was received by then; lifted when one is received."""

import datetime as dt

import pytest

from healthkit import clock
from healthkit.errors import ApplicationError
from healthkit.models import PopupEvent, TestRequirement, TestResult
from healthkit.selectors import popup_explain
from healthkit.services import test_requirement_create
from tests.factories import ResidentFactory, TestResultFactory
from tests.factories.healthkit import cst
from tests.healthkit.engine_helpers import active_at, cases

pytestmark = pytest.mark.django_db
TRIGGER = cst(2022, 5, 10, 8)
DEADLINE = cst(2022, 5, 11, 20)  # screening deadlines are not always 72 h
SECOND = dt.timedelta(seconds=1)


def _require(resident, **kwargs):
    # Created when the screening was announced (a requirement counts from when it is on record).
    with clock.frozen_at(TRIGGER):
        return test_requirement_create(resident=resident, kind=kwargs.pop("kind", "mass_screening"),
                                       trigger_at=TRIGGER, deadline_at=DEADLINE,
                                       reason="朝阳区全员核酸", source_ref="round-3", **kwargs)


def test_raised_at_its_own_deadline_and_lifted_by_a_negative_received_later():
    resident = ResidentFactory()
    requirement = _require(resident)
    assert active_at(resident, DEADLINE - SECOND) == []
    assert active_at(resident, DEADLINE) == [4]
    (case,) = cases(resident, 4)
    assert case.raised_at == DEADLINE
    (record,) = case.events.get(kind=PopupEvent.Kind.RAISED).data["records"]
    assert record["test_requirement"] == requirement.pk and dt.datetime.fromisoformat(record["deadline"]) == DEADLINE
    assert "朝阳区全员核酸" in "\n".join(popup_explain(case))
    received = DEADLINE + dt.timedelta(hours=5)
    TestResultFactory(resident=resident, sampled_at=DEADLINE + dt.timedelta(hours=1), resulted_at=received,
                      received_at=received, result=TestResult.Outcome.NEGATIVE)
    assert active_at(resident, received - SECOND) == [4]
    assert active_at(resident, received) == []


def test_negative_received_before_the_deadline_means_no_popup():
    resident = ResidentFactory()
    _require(resident, kind="checkpoint")
    TestResultFactory(resident=resident, sampled_at=TRIGGER + SECOND, resulted_at=DEADLINE - SECOND,
                      received_at=DEADLINE - SECOND, result=TestResult.Outcome.NEGATIVE)
    assert active_at(resident, DEADLINE + dt.timedelta(days=1)) == []


def test_create_is_idempotent_on_resident_kind_source_ref_and_trigger():
    resident = ResidentFactory()
    first = _require(resident)
    again = _require(resident)
    assert first.pk == again.pk
    assert TestRequirement.objects.filter(resident=resident).count() == 1
    other = _require(resident, kind="occupational")
    assert other.pk != first.pk


@pytest.mark.parametrize("kind", ["occupational", "mass_screening", "investigation", "checkpoint"])
def test_every_kind_is_accepted(kind):
    assert _require(ResidentFactory(), kind=kind).kind == kind


def test_unknown_kind_or_backwards_deadline_is_refused():
    resident = ResidentFactory()
    with pytest.raises(ApplicationError):
        test_requirement_create(resident=resident, kind="whim", trigger_at=TRIGGER, deadline_at=DEADLINE,
                                reason="x")
    with pytest.raises(ApplicationError):
        test_requirement_create(resident=resident, kind="checkpoint", trigger_at=DEADLINE,
                                deadline_at=TRIGGER, reason="x")


def test_deadline_already_passed_raises_on_commit(django_capture_on_commit_callbacks):
    resident = ResidentFactory()
    with django_capture_on_commit_callbacks(execute=True):
        test_requirement_create(resident=resident, kind="investigation", trigger_at=cst(2022, 3, 1),
                                deadline_at=cst(2022, 3, 2), reason="流调")
    assert [c.popup_type for c in cases(resident, 4)] == [4]
