"""Crafted query strings and ingest records: a NUL byte (PostgreSQL refuses it in text) or a
non-ASCII digit never turns into a 500; the printable part of a search still searches."""

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory, make_id_number
from tests.factories.venues import VenueFactory
from venues.models import ScanBatch, VenueScan

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor_client(client):
    client.raise_request_exception = False
    client.force_login(UserFactory(role="supervisor"))
    return client


def test_nul_in_the_venue_search_is_dropped_and_the_rest_searches(supervisor_client):
    # given two venues
    wanted = VenueFactory(name="望京abc火锅店")
    VenueFactory(name="三里屯咖啡")

    # when the search carries a NUL byte and another control character
    response = supervisor_client.get("/console/venues/", {"q": "\x00ab\x01c"})

    # then the page answers with what "abc" finds, and echoes the cleaned query
    assert response.status_code == 200
    assert [v.pk for v in response.context["page"]] == [wanted.pk]
    assert response.context["q"] == "abc"


def test_nul_alone_in_the_venue_search_lists_every_venue(supervisor_client):
    VenueFactory(), VenueFactory()
    response = supervisor_client.get("/console/venues/?q=%00")
    assert response.status_code == 200 and response.context["page"].paginator.count == 2


def test_venue_code_search_still_matches_exactly(supervisor_client):
    venue = VenueFactory()
    response = supervisor_client.get("/console/venues/", {"q": venue.code.lower() + "\x00"})
    assert [v.pk for v in response.context["page"]] == [venue.pk]


def test_venue_code_search_finds_a_code_typed_full_width(supervisor_client):
    venue = VenueFactory()
    wide = "".join(chr(ord(ch) + 0xFEE0) for ch in venue.code)
    response = supervisor_client.get("/console/venues/", {"q": wide})
    assert [v.pk for v in response.context["page"]] == [venue.pk]


def test_superscript_digit_as_register_page_is_refused_not_read_as_page_one(supervisor_client):
    venue = VenueFactory()
    response = supervisor_client.get(f"/console/venues/{venue.pk}/register/",
                                     {"start": "2022-09-01T00:00", "end": "2022-09-02T00:00", "page": "²"})
    assert response.status_code == 400 and response.context["form"].non_field_errors()
    assert "page" not in response.context


def test_nul_in_register_range_is_a_form_error(supervisor_client):
    venue = VenueFactory()
    page = supervisor_client.get(f"/console/venues/{venue.pk}/register/", {"start": "\x00", "end": "2022-09-02T00:00"})
    csv = supervisor_client.get(f"/console/venues/{venue.pk}/register.csv", {"start": "\x00", "end": "2022-09-02T00:00"})
    assert page.status_code == 400 and page.context["form"].errors
    assert csv.status_code == 400


def test_risk_window_pages_ignore_crafted_filters(supervisor_client):
    response = supervisor_client.get("/console/venues/risk-windows/", {"state": "\x00", "venue": "\x00", "page": "\x00"})
    assert response.status_code == 200


def test_risk_window_api_refuses_a_venue_filter_that_is_not_an_ascii_number():
    api = APIClient()
    api.force_authenticate(UserFactory(role="supervisor"))
    for value in ("²", "\x00"):  # "²".isdigit(); a NUL is dropped, leaving the value empty
        response = api.get("/api/v1/venues/risk-windows/", {"venue": value})
        assert response.status_code == 400 and list(response.json()["errors"]) == ["venue"]


@pytest.fixture
def integration():
    api = APIClient()
    api.raise_request_exception = False
    api.force_authenticate(UserFactory(role="integration"))
    return api


def _record(**overrides):
    return {"id_number": make_id_number(), "scanned_at": "2022-09-01T12:00:00+08:00", **overrides}


def test_ingest_rejects_records_with_control_characters_by_index(integration):
    # given a batch with a NUL in a venue code and in a new resident's name, and one good record
    venue = VenueFactory()
    records = [_record(venue="V\x00" + venue.code[1:]), _record(venue=venue.code, name="王\x00五"),
               _record(venue=venue.code, name="王五")]

    # when it is posted
    response = integration.post("/api/v1/venues/scans/", {"records": records}, format="json")

    # then the two bad records are reported by index and the good one is stored
    assert response.status_code == 200
    body = response.json()
    assert [r["index"] for r in body["rejected"]] == [0, 1]
    assert set(body["rejected"][0]["errors"]) == {"venue"} and set(body["rejected"][1]["errors"]) == {"name"}
    assert body["accepted"] == 1 and VenueScan.objects.count() == 1


def test_ingest_refuses_a_batch_id_with_control_characters(integration):
    venue = VenueFactory()
    response = integration.post("/api/v1/venues/scans/", {"batch_id": "gate\x00-1", "records": [_record(venue=venue.code)]},
                                format="json")
    assert response.status_code == 400 and response.json()["detail"]
    assert not ScanBatch.objects.exists() and not VenueScan.objects.exists()
