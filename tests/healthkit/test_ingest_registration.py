"""Ingest registers an unknown resident sent with a name only when one of their records is
kept: a name and ID number that came only with rejected records are not stored."""

import datetime as dt

import pytest
from django.utils import timezone

from communities import pii
from communities.models import Resident
from healthkit import ingest
from healthkit.models import Arrival, TestResult
from tests.factories import ResidentFactory, make_id_number
from tests.factories.venues import VenueFactory
from venues.ingest import scans_ingest

pytestmark = pytest.mark.django_db


def _result(number, sample_id, *, result="negative", **extra):
    sampled = timezone.now() - dt.timedelta(hours=10)
    return {"id_number": number, "name": "王五", "lab": "lab-1", "sample_id": sample_id,
            "sampled_at": sampled.isoformat(), "resulted_at": (sampled + dt.timedelta(hours=2)).isoformat(),
            "result": result, **extra}


def _registered(number: str) -> Resident | None:
    return Resident.objects.filter(id_hash=pii.id_hash(number)).first()


def test_results_all_rejected_register_nobody():
    number = make_id_number()
    out = ingest.ingest(kind="test_results", records=[_result(number, "S1", result="maybe"),
                                                      _result(number, "S2", sampled_at="yesterday")])
    assert out.accepted == 0 and [r["index"] for r in out.rejected] == [0, 1]
    assert _registered(number) is None


def test_one_good_result_registers_the_resident_once_with_it():
    number, lost = make_id_number(), make_id_number()
    out = ingest.ingest(kind="test_results", records=[
        _result(number, "S1", result="maybe"), _result(number, "S2"), _result(lost, "S3", result="maybe"),
    ])
    assert out.accepted == 1
    resident = _registered(number)
    assert resident is not None and resident.name == "王五"
    assert list(TestResult.objects.values_list("resident_id", "sample_id")) == [(resident.pk, "S2")]
    assert _registered(lost) is None


def test_other_kinds_and_known_residents():
    known = ResidentFactory()
    known_number, unknown = known.reveal_id_number(), make_id_number()
    arrived = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    out = ingest.ingest(kind="arrivals", records=[
        {"id_number": unknown, "name": "赵六", "arrived_at": arrived, "from_county": "31"},  # bad county
        {"id_number": known_number, "name": "改名", "arrived_at": arrived, "from_county": "310115"},
    ])
    assert out.accepted == 1 and [r["index"] for r in out.rejected] == [0]
    assert _registered(unknown) is None
    known.refresh_from_db()
    assert known.name != "改名" and Arrival.objects.get().resident_id == known.pk  # a known resident is not renamed


def test_venue_scans_all_rejected_register_nobody():
    venue = VenueFactory()
    number, kept = make_id_number(), make_id_number()
    out = scans_ingest(records=[
        {"id_number": number, "name": "孙七", "venue": "NO-SUCH-CODE", "scanned_at": "2022-09-01T12:00:00+08:00"},
        {"id_number": kept, "name": "周八", "venue": venue.code, "scanned_at": "2022-09-01T12:00:00+08:00"},
    ])
    assert out.accepted == 1
    assert _registered(number) is None and _registered(kept).name == "周八"
