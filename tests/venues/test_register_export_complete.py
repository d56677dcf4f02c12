"""The visitor register CSV holds every visit of the requested range, past the 100 000 rows it
used to stop at silently; still masked, scoped and audited once."""

import csv
import io

import pytest
from django.db import connection

from communities.models import PersonalDataAccess
from tests.factories import ResidentFactory, UserFactory, make_id_number
from tests.factories.venues import VenueFactory, VenueScanFactory, cst

pytestmark = pytest.mark.django_db
VISITS = 100_007


def _scans_every_second(*, venue, resident, count, start):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO venues_venuescan (venue_id, resident_id, scanned_at, received_at) "
            "SELECT %s, %s, %s + make_interval(secs => g), %s + make_interval(secs => g) "
            "FROM generate_series(0, %s - 1) AS g",
            [venue.pk, resident.pk, start, start, count])


def test_export_streams_every_visit_of_the_range_beyond_100k(client):
    # given a venue with 100 007 visits in one day (one a second) and one visit in another venue
    manager = UserFactory(role="venue_manager")
    venue, other = VenueFactory(managers=[manager]), VenueFactory()
    number = make_id_number()
    resident = ResidentFactory(name="张三丰", id_number=number)
    _scans_every_second(venue=venue, resident=resident, count=VISITS, start=cst(2022, 9, 1, 0))
    VenueScanFactory(venue=other, scanned_at=cst(2022, 9, 1, 12))
    client.force_login(manager)

    # when the manager exports that range
    response = client.get(f"/console/venues/{venue.pk}/register.csv",
                          {"start": "2022-09-01T00:00", "end": "2022-09-03T00:00"})

    # then the response is streamed and holds every visit, newest first, masked
    assert response.status_code == 200 and response.streaming
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    header, data = rows[0], rows[1:]
    assert len(header) == 3
    assert len(data) == VISITS
    assert data[0][0] == "2022-09-02 03:46:46" and data[-1][0] == "2022-09-01 00:00:00"
    assert {row[1] for row in data} == {resident.masked}
    assert {row[2] for row in data} == {venue.code}
    assert "张三丰" not in body and number not in body
    # and the export was logged once, with its range
    log = PersonalDataAccess.objects.get(actor=manager)
    assert log.action == "export" and log.context == f"venue-register:{venue.pk}"
