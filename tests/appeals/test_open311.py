"""Open311 GeoReport v2: services, filing and tracking requests, JSON and XML."""

import xml.etree.ElementTree as ET

import pytest
from rest_framework.authtoken.models import Token

from appeals.models import Appeal
from communities.models import User
from tests.factories import UserFactory, make_id_number
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_key(db):
    return Token.objects.create(user=UserFactory(role=User.Role.INTEGRATION)).key


def _file(client, api_key, HTTP_IDEMPOTENCY_KEY=None, **extra):
    data = {"api_key": api_key, "service_code": "correction", "first_name": "小明", "last_name": "王",
            "phone": "13600009999", "attribute[id_number]": make_id_number(), "attribute[popup_type]": "3",
            "address_string": "朝阳区望京西园三区", "description": "wrong popup"} | extra
    headers = {"HTTP_IDEMPOTENCY_KEY": HTTP_IDEMPOTENCY_KEY} if HTTP_IDEMPOTENCY_KEY else {}
    return client.post("/open311/v2/requests.json", data, **headers)


def test_services_list_is_public_in_json_and_xml(client):
    services = client.get("/open311/v2/services.json").json()
    assert {s["service_code"] for s in services} == set(Appeal.Category.values)
    assert all(s["metadata"] is True and s["type"] == "realtime" for s in services)
    root = ET.fromstring(client.get("/open311/v2/services.xml").content)  # noqa: S314 - our own response
    assert root.tag == "services" and len(root.findall("service")) == len(services)


def test_service_definition_lists_the_id_attribute(client):
    definition = client.get("/open311/v2/services/stranded.json").json()
    assert definition["service_code"] == "stranded"
    assert [a["code"] for a in definition["attributes"]] == ["id_number", "popup_type", "outside_since"]
    assert client.get("/open311/v2/services/nope.json").status_code == 404


def test_post_request_files_an_appeal(client, api_key, community):
    response = _file(client, api_key)
    assert response.status_code == 201
    body = response.json()[0]
    appeal = Appeal.objects.get(reference=body["service_request_id"])
    assert appeal.channel == Appeal.Channel.OPEN311 and appeal.community == community
    # the name and ID number typed live on the appeal; no registry record is created from them
    assert appeal.resident is None and appeal.filer_unconfirmed and appeal.popup_type_claimed == 3
    assert appeal.claimed_masked.startswith("王*")
    assert "Free of charge" in body["service_notice"]


def test_post_without_api_key_is_refused_with_open311_errors(client):
    response = client.post("/open311/v2/requests.json", {"service_code": "correction"})
    assert response.status_code == 403
    assert response.json()[0]["code"] == 403


def test_post_with_bad_id_number_is_a_400(client, api_key):
    response = _file(client, api_key, **{"attribute[id_number]": "110105199001011234"})
    assert response.status_code == 400 and "ID number" in response.json()[0]["description"]


def test_get_request_and_list_in_json_and_xml(client, api_key):
    ref = _file(client, api_key).json()[0]["service_request_id"]
    one = client.get(f"/open311/v2/requests/{ref}.json", HTTP_AUTHORIZATION=f"Token {api_key}").json()[0]
    assert one["service_request_id"] == ref and one["status"] == "open" and one["service_code"] == "correction"
    assert one["description"] == "" and "望京" not in one.get("address_string", "")
    listing = client.get("/open311/v2/requests.json", {"status": "open"}, HTTP_AUTHORIZATION=f"Token {api_key}").json()
    assert [r["service_request_id"] for r in listing] == [ref]
    root = ET.fromstring(client.get(f"/open311/v2/requests/{ref}.xml", HTTP_AUTHORIZATION=f"Token {api_key}").content)  # noqa: S314 - our own response
    assert root.tag == "service_requests" and root.find("request/service_request_id").text == ref


def test_a_client_sees_only_its_own_requests(client, api_key):
    other = AppealFactory()
    assert client.get(f"/open311/v2/requests/{other.reference}.json", HTTP_AUTHORIZATION=f"Token {api_key}").status_code == 404
    listing = client.get("/open311/v2/requests.json", HTTP_AUTHORIZATION=f"Token {api_key}").json()
    assert listing == []


def test_closed_status_and_notes(client, api_key):
    from appeals.services import appeal_close

    ref = _file(client, api_key).json()[0]["service_request_id"]
    appeal_close(appeal=Appeal.objects.get(reference=ref), actor=None, reason="Popup lifted", outcome="lifted")
    one = client.get(f"/open311/v2/requests/{ref}.json", HTTP_AUTHORIZATION=f"Token {api_key}").json()[0]
    assert one["status"] == "closed" and one["status_notes"] == "Popup lifted"


def test_repeat_filing_folds(client, api_key):
    number = make_id_number()
    first = _file(client, api_key, **{"attribute[id_number]": number}).json()[0]["service_request_id"]
    second = _file(client, api_key, **{"attribute[id_number]": number}).json()[0]["service_request_id"]
    assert first == second and Appeal.objects.get().repeat_count == 1


def test_date_window_and_bad_dates(client, api_key):
    ref = _file(client, api_key).json()[0]["service_request_id"]
    inside = client.get("/open311/v2/requests.json", {"start_date": "2020-01-01T00:00:00+08:00"}, HTTP_AUTHORIZATION=f"Token {api_key}")
    assert [r["service_request_id"] for r in inside.json()] == [ref]
    before = client.get("/open311/v2/requests.json", {"end_date": "2020-01-01T00:00:00Z"}, HTTP_AUTHORIZATION=f"Token {api_key}")
    assert before.json() == []
    bad = client.get("/open311/v2/requests.json", {"start_date": "yesterday"}, HTTP_AUTHORIZATION=f"Token {api_key}")
    assert bad.status_code == 400 and "ISO 8601" in bad.json()[0]["description"]


def _gbk_form(api_key: str) -> bytes:
    from urllib.parse import quote_from_bytes

    data = {"api_key": api_key, "service_code": "correction", "first_name": "小明", "last_name": "王",
            "phone": "13600009999", "attribute[id_number]": make_id_number(), "address_string": "朝阳区望京西园三区",
            "description": "弹窗有误"}
    return "&".join(f"{k}={quote_from_bytes(v.encode('gbk'))}" for k, v in data.items()).encode()


def test_a_form_in_gbk_without_a_charset_is_refused_not_stored_as_mojibake(client, api_key):
    # given a legacy client posting GBK bytes and no charset (Django reads them as UTF-8: U+FFFD)
    response = client.post("/open311/v2/requests.json", _gbk_form(api_key),
                           content_type="application/x-www-form-urlencoded")
    # then a 400 naming a field, and no appeal with unreadable text
    assert response.status_code == 400
    assert response.json()[0]["code"] == 400
    assert not Appeal.objects.exists()


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_form_declared_in_another_charset_is_an_open311_error(client, api_key, fmt):
    # given the same body declared as GBK (Django refuses form bodies not in UTF-8)
    response = client.post(f"/open311/v2/requests.{fmt}", _gbk_form(api_key),
                           content_type="application/x-www-form-urlencoded; charset=gbk")
    # then the answer is Open311's error list in the format asked for, not an HTML page
    assert response.status_code == 400
    if fmt == "json":
        assert response.json()[0]["code"] == 400
    else:
        assert ET.fromstring(response.content).tag == "errors"  # noqa: S314 - our own response
    assert not Appeal.objects.exists()


def test_a_client_over_the_filing_limit_is_told_when_to_try_again(client, api_key, settings):
    settings.APPEALS_RATE_LIMITS = {**settings.APPEALS_RATE_LIMITS, "file_ip": "1/600"}
    assert _file(client, api_key).status_code == 201
    refused = _file(client, api_key)
    assert refused.status_code == 429 and refused["Retry-After"] == "600"
    assert refused.json()[0]["code"] == 429
    assert Appeal.objects.count() == 1


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_retried_request_with_its_idempotency_key_files_once_and_gets_the_first_answer(client, api_key, fmt):
    # given a service request sent with a key, whose answer the client never got
    data = {"api_key": api_key, "service_code": "correction", "first_name": "小明", "last_name": "王",
            "phone": "13600009999", "attribute[id_number]": make_id_number(), "address_string": "望京西园三区"}
    first = client.post(f"/open311/v2/requests.{fmt}", data, HTTP_IDEMPOTENCY_KEY="req-42")
    # when the client sends it again with the same key
    again = client.post(f"/open311/v2/requests.{fmt}", data, HTTP_IDEMPOTENCY_KEY="req-42")
    # then it gets the first answer, and the city has one appeal, not repeated
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == first["Content-Type"]
    assert Appeal.objects.get().repeat_count == 0
    # the same key with another body is refused in Open311's error list; nothing is filed
    other = client.post(f"/open311/v2/requests.{fmt}", {**data, "description": "other"}, HTTP_IDEMPOTENCY_KEY="req-42")
    assert other.status_code == 422 and Appeal.objects.get().repeat_count == 0
    if fmt == "json":
        assert other.json()[0]["code"] == 422
    else:
        assert ET.fromstring(other.content).tag == "errors"  # noqa: S314 - our own response


def test_a_refused_request_is_replayed_and_a_bad_key_is_an_open311_error(client, api_key):
    form = {"service_code": "nope", "attribute[id_number]": make_id_number()}
    refused = _file(client, api_key, HTTP_IDEMPOTENCY_KEY="req-43", **form)
    assert refused.status_code == 400
    again = _file(client, api_key, HTTP_IDEMPOTENCY_KEY="req-43", **form)
    assert again["Idempotent-Replayed"] == "true" and again.content == refused.content
    bad = _file(client, api_key, HTTP_IDEMPOTENCY_KEY="x" * 201)
    assert bad.status_code == 400 and bad.json()[0]["code"] == 400 and not Appeal.objects.exists()
