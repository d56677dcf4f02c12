"""A lab that sends the same lab + sample id again with another result is correcting it: both
results are kept (the earlier one marked superseded from the correction's arrival), the batch
counts it as `corrected`, the resident is re-evaluated and the engine reads the correction. A
plain retry stays a duplicate. Records that conflict (a record_id reused for another resident,
one ID number with two names in a batch) are reported per record."""

import datetime as dt

import pytest
from django.utils import translation

from healthkit import clock, ingest
from healthkit.models import Arrival, TestResult
from healthkit.selectors import health_code_at
from tests.factories import ResidentFactory, make_id_number
from tests.factories.healthkit import ArrivalFactory, cst
from tests.healthkit.engine_helpers import active_at

pytestmark = pytest.mark.django_db
ARRIVED = cst(2022, 6, 1, 9)


def _result(number, result, *, sample="S-1", sampled=ARRIVED + dt.timedelta(hours=2)):
    return {"id_number": number, "lab": "北京某检测所", "sample_id": sample, "sampled_at": sampled.isoformat(),
            "resulted_at": (sampled + dt.timedelta(hours=3)).isoformat(), "result": result}


def _send(records, at, kind="test_results", **options):
    with clock.frozen_at(at):
        return ingest.ingest(kind=kind, records=records, **options)


def test_a_correction_supersedes_keeps_history_and_the_engine_reads_it(django_capture_on_commit_callbacks):
    resident = ArrivalFactory(arrived_at=ARRIVED).resident
    number = resident.reveal_id_number()
    first_at, fixed_at = ARRIVED + dt.timedelta(hours=6), ARRIVED + dt.timedelta(hours=30)
    with django_capture_on_commit_callbacks(execute=True):
        first = _send([_result(number, "negative")], first_at)
    assert (first.accepted, first.corrected) == (1, 0)
    assert active_at(resident, first_at + dt.timedelta(hours=1)) == []  # the negative lifted type 4
    with django_capture_on_commit_callbacks(execute=True):
        fixed = _send([_result(number, "positive")], fixed_at)
    assert (fixed.accepted, fixed.corrected, fixed.duplicates, fixed.rejected) == (0, 1, 0, [])
    assert fixed.resident_ids == [resident.pk]  # re-evaluated
    rows = list(TestResult.objects.order_by("received_at").values_list("result", "superseded_at"))
    assert rows == [("negative", fixed_at), ("positive", None)]
    assert health_code_at(resident, fixed_at).color == "red"
    assert health_code_at(resident, fixed_at - dt.timedelta(minutes=1)).color == "green"  # history as it was
    # The engine reads the correction too: no negative stands any more, so type 4 comes at its deadline.
    assert active_at(resident, ARRIVED + dt.timedelta(hours=73)) == [4]


def test_a_plain_retry_is_a_duplicate_not_a_correction():
    number = ResidentFactory().reveal_id_number()
    _send([_result(number, "negative")], ARRIVED + dt.timedelta(hours=6), evaluate=False)
    again = _send([_result(number, "negative")], ARRIVED + dt.timedelta(hours=7), evaluate=False)
    assert (again.accepted, again.duplicates, again.corrected) == (0, 1, 0)
    assert TestResult.objects.filter(superseded_at__isnull=True).count() == TestResult.objects.count() == 1


def test_a_correction_in_the_same_batch_supersedes_the_earlier_record():
    number = ResidentFactory().reveal_id_number()
    out = _send([_result(number, "negative"), _result(number, "negative", sample="S-2"), _result(number, "positive")],
                ARRIVED + dt.timedelta(hours=6), evaluate=False)
    assert (out.accepted, out.corrected, out.duplicates) == (2, 1, 0)
    current = TestResult.objects.filter(superseded_at__isnull=True)
    assert sorted(current.values_list("sample_id", "result")) == [("S-1", "positive"), ("S-2", "negative")]
    assert TestResult.objects.count() == 3


def test_a_correction_next_to_a_retry_goes_the_staging_way_with_the_same_outcome():
    number = ResidentFactory().reveal_id_number()
    _send([_result(number, "negative"), _result(number, "negative", sample="S-2")], ARRIVED + dt.timedelta(hours=6),
          evaluate=False)
    out = _send([_result(number, "negative", sample="S-2"), _result(number, "positive"),
                 _result(number, "negative", sample="S-3")], ARRIVED + dt.timedelta(hours=8), evaluate=False)
    assert (out.accepted, out.corrected, out.duplicates) == (1, 1, 1)
    assert TestResult.objects.get(sample_id="S-1", superseded_at__isnull=True).result == "positive"


def test_one_id_number_with_two_names_in_a_batch_is_a_conflict_on_the_later_record():
    number = make_id_number()
    arrival = {"id_number": number, "arrived_at": (ARRIVED - dt.timedelta(hours=1)).isoformat(), "from_county": "310115"}
    with translation.override("en"):  # the feed's errors in the language its request asked for
        out = _send([{**arrival, "name": "王小明", "record_id": "a1"}, {**arrival, "name": "王晓明", "record_id": "a2"},
                     {**arrival, "name": "王小明", "record_id": "a3"}], ARRIVED, kind="arrivals", evaluate=False)
    assert out.rejected == [{"index": 1, "errors": {
        "name": "Conflict: record 0 of this batch gives this ID number another name."}}]
    assert out.accepted == 2 and Arrival.objects.get(record_key__endswith=":a1").resident.name == "王小明"


def test_a_record_id_reused_in_one_batch_for_two_residents_is_a_conflict():
    one, two = ResidentFactory().reveal_id_number(), ResidentFactory().reveal_id_number()
    arrival = {"arrived_at": (ARRIVED - dt.timedelta(hours=1)).isoformat(), "from_county": "310115", "record_id": "x"}
    out = _send([{**arrival, "id_number": one}, {**arrival, "id_number": two}], ARRIVED, kind="arrivals",
                evaluate=False)
    assert out.accepted == 1 and [r["index"] for r in out.rejected] == [1]
    assert list(out.rejected[0]["errors"]) == ["record_id"]


# --- the original arriving after its correction, or retried after it ---

def _resulted(number, result, hours):
    """A result of sample S-1 resulted `hours` after sampling (the correction carries a later time)."""
    record = _result(number, result)
    record["resulted_at"] = (ARRIVED + dt.timedelta(hours=2 + hours)).isoformat()
    return record


def _current(resident):
    return TestResult.objects.get(resident=resident, sample_id="S-1", superseded_at__isnull=True).result


def test_an_original_arriving_after_its_correction_is_kept_as_history_and_the_correction_stands():
    resident = ResidentFactory()
    number = resident.reveal_id_number()
    _send([_resulted(number, "positive", 6)], ARRIVED + dt.timedelta(hours=9), evaluate=False)  # the correction
    late_at = ARRIVED + dt.timedelta(hours=10)
    late = _send([_resulted(number, "negative", 3)], late_at, evaluate=False)  # the original, delayed
    assert (late.accepted, late.corrected, late.duplicates, late.rejected) == (0, 1, 0, [])
    assert _current(resident) == "positive"
    assert TestResult.objects.get(result="negative").superseded_at == late_at  # history, never current
    assert health_code_at(resident, late_at + dt.timedelta(minutes=1)).color == "red"
    again = _send([_resulted(number, "negative", 3)], late_at + dt.timedelta(hours=1), evaluate=False)
    assert (again.accepted, again.corrected, again.duplicates) == (0, 0, 1)
    assert TestResult.objects.count() == 2


def test_a_retry_of_a_corrected_original_does_not_undo_the_correction():
    resident = ResidentFactory()
    number = resident.reveal_id_number()
    _send([_result(number, "negative")], ARRIVED + dt.timedelta(hours=6), evaluate=False)
    _send([_result(number, "positive")], ARRIVED + dt.timedelta(hours=8), evaluate=False)  # same resulted_at
    retry = _send([_result(number, "negative")], ARRIVED + dt.timedelta(hours=9), evaluate=False)  # network retry
    assert (retry.accepted, retry.corrected, retry.duplicates) == (0, 0, 1)
    assert _current(resident) == "positive"
    assert TestResult.objects.count() == 2


def test_in_one_batch_the_result_resulted_later_is_current_whatever_the_order():
    resident = ResidentFactory()
    number = resident.reveal_id_number()
    out = _send([_resulted(number, "positive", 6), _resulted(number, "negative", 3)], ARRIVED + dt.timedelta(hours=9),
                evaluate=False)
    assert (out.accepted, out.corrected, out.duplicates) == (1, 1, 0)
    assert _current(resident) == "positive"
    assert TestResult.objects.count() == 2
