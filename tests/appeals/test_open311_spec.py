"""Open311 GeoReport v2 as the spec writes it: XML shapes, errors as Open311 lists, form posts,
jurisdiction_id and status filters, and one status_notes for list and detail."""

import json
import xml.etree.ElementTree as ET

import pytest
from rest_framework.authtoken.models import Token

from appeals.models import Appeal, AppealEvent
from communities.models import User
from healthkit.models import PopupType
from tests.factories import UserFactory, make_id_number

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_key(db):
    return Token.objects.create(user=UserFactory(role=User.Role.INTEGRATION)).key


def _form(api_key: str, **extra) -> dict:
    return {"api_key": api_key, "service_code": "correction", "first_name": "小明", "last_name": "王",
            "phone": "13600009999", "attribute[id_number]": make_id_number(), "attribute[popup_type]": "3",
            "address_string": "朝阳区望京西园三区"} | extra


def _xml(response) -> ET.Element:
    assert response["Content-Type"].startswith("text/xml")
    return ET.fromstring(response.content)  # noqa: S314 - our own response


def _errors(response) -> list[dict]:
    """The Open311 error list, whichever format; never an HTML page."""
    if response["Content-Type"].startswith("text/xml"):
        root = _xml(response)
        assert root.tag == "errors"
        return [{"code": int(e.findtext("code")), "description": e.findtext("description")}
                for e in root.findall("error")]
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def test_service_definition_xml_follows_the_spec(client):
    root = _xml(client.get("/open311/v2/services/correction.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == "correction"
    attributes = root.findall("attributes/attribute")
    assert [a.findtext("code") for a in attributes] == ["id_number", "popup_type", "outside_since"]
    id_number, popup_type, _outside = attributes
    assert id_number.findtext("variable") == "true" and id_number.findtext("required") == "true"
    assert popup_type.findtext("required") == "false" and popup_type.findtext("datatype") == "singlevaluelist"
    values = popup_type.findall("values/value")
    assert [(v.findtext("key"), v.findtext("name")) for v in values] == [
        (str(value), str(label)) for value, label in PopupType.choices]


def test_service_definition_json_matches_the_xml(client):
    definition = client.get("/open311/v2/services/stranded.json").json()
    outside = definition["attributes"][2]
    assert outside["required"] is True and outside["variable"] is True
    assert definition["attributes"][1]["values"][0] == {"key": "1", "name": str(PopupType(1).label)}


def test_xml_booleans_are_lower_case_everywhere(client):
    services = _xml(client.get("/open311/v2/services.xml"))
    assert {s.findtext("metadata") for s in services.findall("service")} == {"true"}
    for code in Appeal.Category.values:
        body = client.get(f"/open311/v2/services/{code}.xml").content.decode()
        assert "True" not in body and "False" not in body


@pytest.mark.parametrize("path", [
    "/open311/v2/services.csv", "/open311/v2/services", "/open311/v2/services/NOPE.json",
    "/open311/v2/services/nope.json", "/open311/v2/requests/ref%20x.json", "/open311/v2/discovery.html",
])
def test_unknown_format_or_service_answers_the_open311_error_list(client, path):
    response = client.get(path)
    assert response.status_code == 404
    errors = _errors(response)
    assert errors[0]["code"] == 404 and errors[0]["description"]


def test_unknown_service_in_xml_answers_xml_errors(client):
    response = client.get("/open311/v2/services/Nope.xml")
    assert response.status_code == 404 and _errors(response)[0]["code"] == 404


def test_wrong_method_answers_the_open311_error_list(client):
    response = client.post("/open311/v2/services.json", {})
    assert response.status_code == 405 and _errors(response)[0]["code"] == 405


def test_json_body_on_post_is_a_clear_400(client, api_key, community):
    response = client.post("/open311/v2/requests.json", json.dumps(_form(api_key)),
                           content_type="application/json")
    assert response.status_code == 400
    assert "form-encoded" in _errors(response)[0]["description"]
    assert not Appeal.objects.exists()


def test_malformed_form_body_answers_the_open311_error_list(client, api_key):
    response = client.post("/open311/v2/requests.xml", b"garbage", content_type="multipart/form-data")
    assert response.status_code == 400 and _errors(response)[0]["code"] == 400
    assert not Appeal.objects.exists()


def test_urlencoded_post_files_a_request(client, api_key, community):
    from urllib.parse import urlencode

    response = client.post("/open311/v2/requests.xml", urlencode(_form(api_key)),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 201
    ref = _xml(response).findtext("request/service_request_id")
    assert Appeal.objects.filter(reference=ref, channel=Appeal.Channel.OPEN311).exists()


def test_jurisdiction_id_ours_is_served_another_is_not(client, settings, api_key, community):
    settings.OPEN311_JURISDICTION_ID = "healthkit.example.gov.cn"
    ours = client.get("/open311/v2/services.json", {"jurisdiction_id": "healthkit.example.gov.cn"})
    assert ours.status_code == 200 and len(ours.json()) == len(Appeal.Category.values)
    other = client.get("/open311/v2/services.json", {"jurisdiction_id": "sfgov.org"})
    assert other.status_code == 404 and "jurisdiction_id" in _errors(other)[0]["description"]
    refused = client.post("/open311/v2/requests.json", _form(api_key, jurisdiction_id="sfgov.org"))
    assert refused.status_code == 404 and not Appeal.objects.exists()


def test_status_filter_takes_a_comma_list_and_refuses_unknown_values(client, api_key, community):
    from appeals.services import appeal_close

    refs = [client.post("/open311/v2/requests.json", _form(api_key)).json()[0]["service_request_id"]
            for _ in range(2)]
    appeal_close(appeal=Appeal.objects.get(reference=refs[0]), actor=None, reason="Popup lifted", outcome="lifted")

    def listed(status: str) -> set[str]:
        response = client.get("/open311/v2/requests.json", {"status": status}, HTTP_AUTHORIZATION=f"Token {api_key}")
        return {r["service_request_id"] for r in response.json()}

    assert listed("closed") == {refs[0]} and listed("open") == {refs[1]}
    assert listed("open,closed") == set(refs)
    bad = client.get("/open311/v2/requests.json", {"status": "pending"}, HTTP_AUTHORIZATION=f"Token {api_key}")
    assert bad.status_code == 400 and "status" in _errors(bad)[0]["description"]


def test_status_notes_are_the_same_in_list_and_detail(client, api_key, community):
    ref = client.post("/open311/v2/requests.json", _form(api_key)).json()[0]["service_request_id"]
    appeal = Appeal.objects.get(reference=ref)
    AppealEvent.objects.create(appeal=appeal, kind=AppealEvent.Kind.ROUTED, public=True)
    AppealEvent.objects.create(appeal=appeal, kind=AppealEvent.Kind.NOTE, public=False, note="internal")
    listed = client.get("/open311/v2/requests.json", HTTP_AUTHORIZATION=f"Token {api_key}").json()[0]
    detail = client.get(f"/open311/v2/requests/{ref}.json", HTTP_AUTHORIZATION=f"Token {api_key}").json()[0]
    assert listed["status_notes"] == detail["status_notes"] == str(AppealEvent.Kind.ROUTED.label)
    assert listed == detail


def test_an_api_key_in_the_query_string_is_refused_and_never_authenticates(client, api_key, community):
    """Access logs keep URLs: a key there is refused on every method and path, even a valid one."""
    ref = client.post("/open311/v2/requests.json", _form(api_key)).json()[0]["service_request_id"]
    for url in ("/open311/v2/requests.json", f"/open311/v2/requests/{ref}.xml", "/open311/v2/services.json"):
        response = client.get(url, {"api_key": api_key}, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 400, url
        assert "api_key" in response.content.decode() and "Authorization: Token" in response.content.decode()
        assert ref not in response.content.decode()
    posted = client.post(f"/open311/v2/requests.json?api_key={api_key}", _form(api_key))
    assert posted.status_code == 400 and Appeal.objects.count() == 1
    # the reads take the key as a header
    assert client.get(f"/open311/v2/requests/{ref}.json", HTTP_AUTHORIZATION=f"Token {api_key}").status_code == 200
    assert client.get(f"/open311/v2/requests/{ref}.json", HTTP_AUTHORIZATION="Token nope").status_code == 403
