"""The visitor register: only the venue's managers (and supervisors), masked, audited, CSV."""

import datetime as dt

import pytest
from django.utils import timezone

from communities.models import PersonalDataAccess
from tests.factories import ResidentFactory, UserFactory, make_id_number
from tests.factories.venues import VenueFactory, VenueScanFactory, cst

pytestmark = pytest.mark.django_db
RANGE = {"start": "2022-09-01T00:00", "end": "2022-09-02T00:00"}


@pytest.fixture
def setup():
    manager = UserFactory(role="venue_manager")
    mine, other = VenueFactory(managers=[manager]), VenueFactory()
    number = make_id_number()
    resident = ResidentFactory(name="张三丰", id_number=number)
    VenueScanFactory(venue=mine, resident=resident, scanned_at=cst(2022, 9, 1, 12))
    VenueScanFactory(venue=mine, scanned_at=cst(2022, 9, 2, 0))  # at the (exclusive) end
    VenueScanFactory(venue=other, scanned_at=cst(2022, 9, 1, 12))
    return manager, mine, other, resident, number


def test_manager_sees_masked_visits_of_their_venue_in_the_range(client, setup):
    manager, mine, _other, resident, number = setup
    client.force_login(manager)

    response = client.get(f"/console/venues/{mine.pk}/register/", RANGE)

    assert response.status_code == 200
    body = response.content.decode()
    assert resident.masked in body
    assert "张三丰" not in body and number not in body
    assert response.context["page"].paginator.count == 1
    log = PersonalDataAccess.objects.get(actor=manager)
    assert log.action == "view" and log.context == f"venue-register:{mine.pk}" and log.resident is None


def test_manager_cannot_open_another_venues_register_or_export(client, setup):
    manager, _mine, other, _resident, _number = setup
    client.force_login(manager)
    assert client.get(f"/console/venues/{other.pk}/register/", RANGE).status_code == 403
    assert client.get(f"/console/venues/{other.pk}/register.csv", RANGE).status_code == 403
    assert not PersonalDataAccess.objects.exists()


@pytest.mark.parametrize("role", ["operator", "community_worker", "integration"])
def test_other_staff_roles_see_no_register(client, setup, role):
    _manager, mine, _other, _resident, _number = setup
    client.force_login(UserFactory(role=role))
    assert client.get(f"/console/venues/{mine.pk}/register/", RANGE).status_code == 403


def test_supervisor_may_read_any_register(client, setup):
    _manager, _mine, other, _resident, _number = setup
    client.force_login(UserFactory(role="supervisor"))
    assert client.get(f"/console/venues/{other.pk}/register/", RANGE).status_code == 200


def test_csv_export_is_masked_scoped_to_the_venue_and_audited(client, setup):
    manager, mine, _other, resident, number = setup
    client.force_login(manager)

    response = client.get(f"/console/venues/{mine.pk}/register.csv", RANGE)

    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert len(lines) == 2  # header + the one visit inside [start, end)
    assert resident.masked in lines[1] and "2022-09-01 12:00:00" in lines[1]
    assert number not in text and "张三丰" not in text
    assert PersonalDataAccess.objects.filter(actor=manager, action="export").count() == 1


def test_register_range_is_limited(client, setup):
    manager, mine, _other, _resident, _number = setup
    client.force_login(manager)
    too_long = {"start": "2022-08-01T00:00", "end": "2022-09-02T00:00"}
    response = client.get(f"/console/venues/{mine.pk}/register/", too_long)
    assert response.status_code == 400 and response.context["form"].non_field_errors()
    assert "page" not in response.context
    assert client.get(f"/console/venues/{mine.pk}/register.csv", too_long).status_code == 400
    reversed_range = {"start": "2022-09-02T00:00", "end": "2022-09-01T00:00"}
    assert client.get(f"/console/venues/{mine.pk}/register.csv", reversed_range).status_code == 400


def test_venue_list_shows_only_managed_venues(client, setup):
    manager, mine, other, _resident, _number = setup
    client.force_login(manager)
    page = client.get("/console/venues/")
    assert mine.code in page.content.decode() and other.code not in page.content.decode()
    api = client.get("/api/v1/venues/")
    assert [v["code"] for v in api.json()["results"]] == [mine.code]


def test_register_page_query_count_is_bounded(client, setup, django_assert_max_num_queries):
    manager, mine, _other, _resident, _number = setup
    for minute in range(30):
        VenueScanFactory(venue=mine, scanned_at=cst(2022, 9, 1, 13) + dt.timedelta(minutes=minute))
    client.force_login(manager)
    with django_assert_max_num_queries(12):
        assert client.get(f"/console/venues/{mine.pk}/register/", RANGE).status_code == 200


def test_register_without_a_range_shows_the_last_day(client, setup):
    manager, mine, _other, _resident, _number = setup
    VenueScanFactory(venue=mine, scanned_at=timezone.now() - dt.timedelta(hours=2))
    client.force_login(manager)
    response = client.get(f"/console/venues/{mine.pk}/register/")
    assert response.status_code == 200 and response.context["page"].paginator.count == 1


def test_register_lookups_are_rate_limited_per_user(client, setup, monkeypatch):
    from venues import services

    manager, mine, _other, _resident, _number = setup
    monkeypatch.setattr(services, "REGISTER_EXPORTS_PER_HOUR", 2)
    client.force_login(manager)
    for _ in range(2):
        assert client.get(f"/console/venues/{mine.pk}/register.csv", RANGE).status_code == 200
    refused = client.get(f"/console/venues/{mine.pk}/register.csv", RANGE)
    assert refused.status_code == 429
    assert PersonalDataAccess.objects.filter(actor=manager, action="export").count() == 2
