"""Scan ingest: COPY + ON CONFLICT, idempotent per scan and per batch, errors by index."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communities.models import Resident
from healthkit.models import PopupCase
from tests.factories import ResidentFactory, UserFactory, make_id_number
from tests.factories.venues import RiskWindowFactory, VenueFactory, cst
from venues.ingest import scans_ingest
from venues.models import RiskWindow, VenueScan

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    numbers = [make_id_number() for _ in range(3)]
    residents = [ResidentFactory(id_number=n) for n in numbers]
    return list(zip(numbers, residents, strict=True))


def _rec(number, venue, at="2022-09-01T12:00:00+08:00", **extra):
    return {"id_number": number, "venue": venue.code, "scanned_at": at, **extra}


def test_ingest_stores_scans_and_a_retry_is_a_duplicate(people):
    venue = VenueFactory()
    records = [_rec(n, venue) for n, _r in people]

    first = scans_ingest(records=records)
    second = scans_ingest(records=records)

    assert (first.accepted, first.duplicates, first.rejected) == (3, 0, [])
    assert (second.accepted, second.duplicates) == (0, 3)
    assert VenueScan.objects.count() == 3
    assert set(VenueScan.objects.values_list("resident_id", flat=True)) == {r.pk for _n, r in people}


def test_duplicates_inside_one_batch_are_stored_once(people):
    venue = VenueFactory()
    number, _resident = people[0]
    result = scans_ingest(records=[_rec(number, venue), _rec(number, venue)])
    assert (result.accepted, result.duplicates) == (1, 1)


def test_batch_id_replays_the_stored_answer_and_writes_nothing(people):
    venue = VenueFactory()
    client = UserFactory(role="integration")
    records = [_rec(n, venue) for n, _r in people]
    first = scans_ingest(records=records, client=client, batch_id="b-1")
    VenueScan.objects.all().delete()

    replay = scans_ingest(records=records, client=client, batch_id="b-1")

    assert replay.replayed and replay.accepted == first.accepted == 3
    assert VenueScan.objects.count() == 0


def test_bad_records_are_reported_by_index_without_echoing_the_id_number(people):
    venue = VenueFactory()
    inactive = VenueFactory(active=False)
    number = people[0][0]
    unknown = make_id_number()
    records = [
        _rec(number, venue),
        {"venue": venue.code, "scanned_at": "2022-09-01T12:00:00+08:00"},
        _rec("110105199001011234", venue),
        _rec(number, venue, at="2022-09-01 12:00"),
        _rec(number, venue, at="2999-01-01T00:00:00+08:00"),
        {**_rec(number, venue), "venue": "VNOSUCHONE"},
        _rec(number, inactive),
        _rec(unknown, venue),
        "not an object",
    ]

    result = scans_ingest(records=records)

    assert result.accepted == 1
    assert [r["index"] for r in result.rejected] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert "110105199001011234" not in str(result.as_response())
    assert unknown not in str(result.as_response())
    assert set(result.rejected[3]["errors"]) == {"scanned_at"}  # in the future
    assert set(result.rejected[4]["errors"]) == set(result.rejected[5]["errors"]) == {"venue"}


def test_unknown_resident_with_a_name_is_registered():
    venue = VenueFactory()
    number = make_id_number()
    result = scans_ingest(records=[_rec(number, venue, name="新居民")])
    assert result.accepted == 1
    assert Resident.objects.filter(name="新居民").count() == 1


def test_malformed_batches_raise():
    from healthkit.errors import ApplicationError

    with pytest.raises(ApplicationError):
        scans_ingest(records={"not": "a list"})
    with pytest.raises(ApplicationError):
        scans_ingest(records=[{}] * 10_001)


def test_late_scan_inside_an_active_window_marks_it_due_and_raises_on_commit(
        people, django_capture_on_commit_callbacks):
    venue = VenueFactory()
    window = RiskWindowFactory(venue=venue, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 14),
                               exposure_due=False)
    outside = RiskWindowFactory(venue=venue, starts_at=cst(2022, 9, 2, 10), ends_at=cst(2022, 9, 2, 14),
                                exposure_due=False)
    number, resident = people[0]

    with django_capture_on_commit_callbacks(execute=True):
        scans_ingest(records=[_rec(number, venue, at="2022-09-01T13:00:00+08:00")])

    assert PopupCase.objects.filter(resident=resident, popup_type=3, dedupe_key=f"venue-risk:{window.pk}").exists()
    assert RiskWindow.objects.get(pk=outside.pk).exposure_due is False
    assert RiskWindow.objects.get(pk=window.pk).exposure_due is False  # the job ran and cleared it


def test_ingest_api_requires_the_integration_role_and_answers_by_index(people):
    venue = VenueFactory()
    api = APIClient()
    url = "/api/v1/venues/scans/"
    operator = UserFactory(role="operator")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")
    assert api.post(url, {"records": []}, format="json").status_code == 403

    client = UserFactory(role="integration")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=client).key}")
    body = {"batch_id": "x1", "records": [_rec(people[0][0], venue), {"venue": venue.code}]}
    response = api.post(url, body, format="json")

    assert response.status_code == 200
    assert response.json()["accepted"] == 1 and response.json()["rejected"][0]["index"] == 1
    assert api.post(url, body, format="json").json()["replayed"] is True
    assert api.post(url, {"records": "x"}, format="json").status_code == 400


def test_a_venue_code_typed_full_width_finds_the_venue(people):
    """'Ｖ７…' from a Chinese input method is the venue printed 'V7…', not "no such venue"."""
    venue = VenueFactory()
    wide = "".join(chr(ord(ch) + 0xFEE0) for ch in venue.code.lower()) + "\u3000"
    number, _resident = people[0]
    result = scans_ingest(records=[{"id_number": number, "venue": wide, "scanned_at": "2022-09-01T12:00:00+08:00"}])
    assert (result.accepted, result.rejected) == (1, [])
    assert VenueScan.objects.get().venue_id == venue.pk
