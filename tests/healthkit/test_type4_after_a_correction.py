"""A negative result that lifted popup 4 and is later corrected (superseded) raises popup 4 again
from the instant the correction arrived, never earlier: between the lift and the correction the
resident was green and was told so, and the history must keep saying so. A superseded negative
that never counted for the trigger (sampled before it) does not move the raise off the deadline.
Every raise path of the engine gives the same answer."""

import datetime as dt

import pytest

from healthkit.models import PopupCase, TestResult
from healthkit.selectors import health_code_at
from tests.factories import TestResultFactory
from tests.factories.healthkit import ArrivalFactory, cst
from tests.healthkit.engine_helpers import RAISE_PATHS, evaluate_by

pytestmark = pytest.mark.django_db
ARRIVED = cst(2022, 6, 1, 9)
DEADLINE = ARRIVED + dt.timedelta(hours=72)
H = dt.timedelta(hours=1)

PATHS = RAISE_PATHS


def _evaluate(monkeypatch, path, resident, at):
    evaluate_by(path, monkeypatch, resident, at)


def _result(resident, outcome, *, sampled, received, superseded=None, sample="S-1"):
    return TestResultFactory(resident=resident, result=outcome, lab="lab-1", sample_id=sample,
                             sampled_at=sampled, resulted_at=received, received_at=received, superseded_at=superseded)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("corrected_after", [dt.timedelta(minutes=1), 10 * H, 7 * 24 * H])
def test_a_lifting_negative_corrected_later_raises_popup_4_again_from_the_correction(
        monkeypatch, path, corrected_after):
    # given popup 4 raised at the deadline and lifted by a negative received 18 h later
    resident = ArrivalFactory(arrived_at=ARRIVED).resident
    _evaluate(monkeypatch, path, resident, DEADLINE)
    lifted_at = DEADLINE + 18 * H
    negative = _result(resident, TestResult.Outcome.NEGATIVE, sampled=DEADLINE + 8 * H, received=lifted_at)
    _evaluate(monkeypatch, path, resident, lifted_at)
    assert PopupCase.objects.get(resident=resident, popup_type=4).lifted_at == lifted_at
    # when the lab corrects it to positive later on
    corrected_at = lifted_at + corrected_after
    TestResult.objects.filter(pk=negative.pk).update(superseded_at=corrected_at)
    _result(resident, TestResult.Outcome.POSITIVE, sampled=negative.sampled_at, received=corrected_at)
    _evaluate(monkeypatch, path, resident, corrected_at + H)
    # then popup 4 is raised again from the correction's arrival; the history in between stays green
    again = PopupCase.objects.filter(resident=resident, popup_type=4).order_by("pk").last()
    assert again.state == PopupCase.State.ACTIVE
    assert again.raised_at == corrected_at
    assert 4 not in health_code_at(resident, corrected_at - dt.timedelta(microseconds=1)).popup_types
    assert 4 in health_code_at(resident, corrected_at).popup_types


@pytest.mark.parametrize("path", PATHS)
def test_a_superseded_negative_sampled_before_the_trigger_does_not_move_the_raise_off_the_deadline(monkeypatch, path):
    # given a negative sampled the day before arriving, corrected after the arrival
    resident = ArrivalFactory(arrived_at=ARRIVED).resident
    _result(resident, TestResult.Outcome.NEGATIVE, sampled=ARRIVED - 24 * H, received=ARRIVED - 20 * H,
            superseded=ARRIVED + 30 * H)
    # when the deadline passes with no negative sampled after the arrival, then popup 4 is dated at it
    _evaluate(monkeypatch, path, resident, DEADLINE + H)
    assert PopupCase.objects.get(resident=resident, popup_type=4).raised_at == DEADLINE
