"""A third-party Open311 client (PyPI `georeport`) reads services, every service definition
and requests, in JSON and in XML, from a live server without an error.

Deviation from plain GeoReport v2 (docs/appeals.md): reads of requests need the `api_key`,
because requests hold personal data. The client sends the key only with POSTs (in the form body),
so the test gives it a session that adds the header `Authorization: Token <key>` to every call:
the only adaptation (a key in the query string is refused: access logs keep URLs)."""

import pytest
import requests
from django.conf import settings
from georeport import GeoReport
from georeport import georeport as georeport_module
from rest_framework.authtoken.models import Token

from appeals.models import Appeal
from appeals.services import appeal_close
from communities.models import User
from tests.factories import UserFactory, make_id_number

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def filed(client, community):
    """An integration client's key and three requests it filed (one closed)."""
    key = Token.objects.create(user=UserFactory(role=User.Role.INTEGRATION)).key
    refs = []
    for code in ("correction", "stranded", "other"):
        response = client.post("/open311/v2/requests.json", {
            "api_key": key, "service_code": code, "first_name": "小明", "last_name": "王",
            "phone": "13600009999", "attribute[id_number]": make_id_number(),
            "attribute[outside_since]": "2022-10-08", "address_string": "朝阳区望京西园三区"})
        assert response.status_code == 201, response.content
        refs.append(response.json()[0]["service_request_id"])
    appeal_close(appeal=Appeal.objects.get(reference=refs[0]), actor=None, reason="Popup lifted", outcome="lifted")
    return key, refs


@pytest.fixture
def keyed_requests(monkeypatch):
    def use(key: str) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {key}"
        monkeypatch.setattr(georeport_module, "requests", session)
    return use


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_georeport_client_reads_everything(live_server, filed, keyed_requests, fmt):
    key, refs = filed
    keyed_requests(key)
    geo = GeoReport(f"{live_server.url}/open311/v2", jurisdiction=settings.OPEN311_JURISDICTION_ID or None,
                    output_format=fmt)

    services = geo.get_service_list()
    assert {s["service_code"] for s in services} == set(Appeal.Category.values)
    assert {str(s["metadata"]).lower() for s in services} == {"true"}

    for code in Appeal.Category.values:
        definition = geo.get_service_definition(code)
        attributes = definition["attributes"] if fmt == "json" else definition["attributes"]["attribute"]
        assert definition["service_code"] == code
        assert [a["code"] for a in attributes] == ["id_number", "popup_type", "outside_since"]
        values = attributes[1]["values"] if fmt == "json" else attributes[1]["values"]["value"]
        assert [v["key"] for v in values] == ["1", "2", "3", "4", "5"]

    listed = geo.get_service_requests(start_date="2020-01-01T00:00:00Z")
    assert {r["service_request_id"] for r in listed} == set(refs)
    closed = geo.get_service_requests(status="closed,open", service_request_id=refs[0])
    closed = closed if isinstance(closed, dict) else closed[0]  # XML: one request is no list
    assert closed["status"] == "closed" and closed["status_notes"] == "Popup lifted"

    for ref in refs:
        one = geo.get_service_request(ref)
        assert one["service_request_id"] == ref
        assert one["status"] == ("closed" if ref == refs[0] else "open")
        assert one == next(r for r in listed if r["service_request_id"] == ref)
