"""A signal dated before the resident was born (the birth date in the ID number, from 00:00 city
time) is refused at ingest, record by record, at the field that dates it, with a message that
never echoes the ID number: a test sampled, an arrival, a stay, a quarantine, a drug purchase or
clinic visit, an upstream assignment, a venue scan. Every kind, every way a record is parsed
(the fast paths, the field checks, the streamed batch, the simulator's own resident); a record
at the first instant of the birth date is kept."""

import datetime as dt

import pytest
from django.utils import translation

from healthkit import clock, ingest
from healthkit.models import (
    Arrival,
    MedicalEvent,
    PopupAssignment,
    QuarantineOrder,
    Stay,
    TestResult,
)
from tests.factories import ResidentFactory, make_id_number
from tests.factories.healthkit import cst
from tests.factories.venues import VenueFactory
from venues.ingest import scans_ingest
from venues.models import VenueScan

BIRTH = dt.date(2022, 3, 10)
BORN = cst(2022, 3, 10)  # 2022-03-09 16:00 UTC
NOW = cst(2022, 8, 1, 12)
MESSAGE = "Lies before the resident's date of birth (as the ID number gives it)."


def _records(at: dt.datetime) -> dict[str, tuple[type, str, dict]]:
    """kind -> (model, the dating field, a record dated `at` without its id_number)."""
    iso, later = at.isoformat(), (at + dt.timedelta(days=1)).isoformat()
    return {
        "test_results": (TestResult, "sampled_at", {"lab": "lab-1", "sample_id": f"S-{iso}", "sampled_at": iso,
                                                    "resulted_at": later, "result": "negative"}),
        "arrivals": (Arrival, "arrived_at", {"arrived_at": iso, "from_county": "420111"}),
        "stays": (Stay, "from", {"county": "420111", "from": iso, "to": later}),
        "quarantine_orders": (QuarantineOrder, "from", {"from": iso, "to": later}),
        "medical_events": (MedicalEvent, "occurred_at", {"kind": "drug_purchase", "category": "fever",
                                                         "occurred_at": iso}),
        "popup_assignments": (PopupAssignment, "assigned_at", {"popup_type": 3, "reason": "match", "assigned_at": iso}),
    }


@pytest.fixture(autouse=True)
def _setup():
    with translation.override("en"), clock.frozen_at(NOW):
        yield


@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(_records(NOW)))
@pytest.mark.parametrize("simulated", [False, True], ids=["by ID number", "the simulator's resident"])
def test_a_signal_before_birth_is_refused_at_its_field_and_one_at_birth_kept(kind, simulated):
    number = make_id_number(birth=BIRTH)
    resident = ResidentFactory(id_number=number)
    model, field, before = _records(BORN - dt.timedelta(minutes=1))[kind]
    _model, _field, at_birth = _records(BORN)[kind]
    extra = {} if simulated else {"id_number": number}
    result = ingest.ingest(kind=kind, records=[{**before, **extra}, {**at_birth, **extra}],
                           resident=resident if simulated else None, evaluate=False)
    assert result.rejected == [{"index": 0, "errors": {field: MESSAGE}}]
    assert result.accepted == 1 and model.objects.filter(resident=resident).count() == 1
    assert number not in str(result.as_response())


@pytest.mark.django_db
def test_results_before_birth_are_refused_on_the_fast_and_slow_paths_alike():
    number = make_id_number(birth=BIRTH)
    ResidentFactory(id_number=number)
    rec = _records(BORN - dt.timedelta(seconds=1))["test_results"][2]
    records = [{**rec, "id_number": number},                              # the usual record: fast path
               {**rec, "id_number": number.lower(), "sample_id": "S-2"},  # normalised: the slow way
               {**rec, "id_number": number, "name": "王某", "sample_id": "S-3"}]  # with a name: the slow way
    result = ingest.ingest(kind="test_results", records=records, evaluate=False)
    assert [r["index"] for r in result.rejected] == [0, 1, 2]
    assert TestResult.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("small_ingest_chunks")
def test_a_streamed_batch_refuses_the_results_before_birth():
    numbers = [make_id_number(birth=BIRTH) for _ in range(4)]
    for number in numbers:
        ResidentFactory(id_number=number)
    before, at_birth = _records(BORN - dt.timedelta(minutes=1))["test_results"][2], _records(BORN)["test_results"][2]
    records = [{**(before if i % 2 else at_birth), "id_number": n, "sample_id": f"S-{i}"} for i, n in enumerate(numbers)]
    result = ingest.ingest(kind="test_results", records=records, evaluate=False)
    assert [r["index"] for r in result.rejected] == [1, 3]
    assert all(r["errors"] == {"sampled_at": MESSAGE} for r in result.rejected)
    assert TestResult.objects.count() == 2


@pytest.mark.django_db
def test_a_venue_scan_before_birth_is_refused():
    number = make_id_number(birth=BIRTH)
    resident = ResidentFactory(id_number=number)
    venue = VenueFactory()
    result = scans_ingest(records=[
        {"id_number": number, "venue": venue.code, "scanned_at": (BORN - dt.timedelta(minutes=1)).isoformat()},
        {"id_number": number, "venue": venue.code, "scanned_at": BORN.isoformat()},
    ])
    assert result.rejected == [{"index": 0, "errors": {"scanned_at": MESSAGE}}]
    assert VenueScan.objects.filter(resident=resident).count() == 1


def test_a_birth_date_starts_at_midnight_city_time_with_the_summer_time_of_the_day():
    assert ingest.birth_start("20220310") == dt.datetime(2022, 3, 9, 16, tzinfo=dt.UTC)
    # Beijing kept summer time (UTC+9) in 1986-1991: 1988-07-01 began at 15:00 UTC
    assert ingest.birth_start("19880701") == dt.datetime(1988, 6, 30, 15, tzinfo=dt.UTC)
