"""The OpenAPI schema is a valid OpenAPI document that says what the server does: paged lists
as paged, every error answer in its one shape, JSON-only bodies as JSON only, record limits,
path and header patterns, the query parameters each operation takes."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communities.models import User
from tests.factories import UserFactory

PAGED = ["/api/v1/appeals/", "/api/v1/clearance/tasks/", "/api/v1/venues/", "/api/v1/venues/risk-windows/"]
JSON_ONLY = ["/api/v1/ingest/test-results/", "/api/v1/ingest/arrivals/", "/api/v1/ingest/stays/",
             "/api/v1/ingest/local-cases/", "/api/v1/ingest/quarantine-orders/", "/api/v1/ingest/medical-events/",
             "/api/v1/ingest/popup-assignments/", "/api/v1/venues/scans/", "/api/v1/sms/receipts/"]


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    with django_db_blocker.unblock():  # the districts a filter takes are read for its enum
        return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_schema_is_a_valid_openapi_document(schema):
    validate(schema)  # raises on any error, e.g. a path parameter the path does not have
    assert "/api/v1/appeals/evidence/{id}/file/" in schema["paths"]


def test_every_operation_documents_its_errors_in_the_one_error_shape(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        assert "400" in responses, (method, path)
        if path != "/api/v1/communities/find/":
            assert {"401", "403"} <= set(responses), (method, path)
        if method == "post":
            assert {"413", "415"} <= set(responses), (method, path)
        assert {"406", "503"} <= set(responses), (method, path)
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                body = response["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/Error"}, (method, path, code)
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "code", "errors", "extra"}
    throttled = [p for p, m, op in _operations(schema) if "429" in op["responses"]]
    assert "/api/v1/residents/health-code/" in throttled and "/api/v1/communities/find/" in throttled


def test_every_operation_has_an_id_a_description_and_the_security_its_permissions_need(schema):
    """A generated client names its methods by operationId and shows the description; its
    authentication follows `security`: anonymous ({}) exactly where the view lets anyone in."""
    from django.urls import resolve
    from rest_framework.permissions import AllowAny

    ids = []
    for path, method, operation in _operations(schema):
        ids.append(operation["operationId"])
        assert operation.get("description", "").strip(), (method, path)
        view = resolve(path.replace("{reference}", "T1").replace("{id}", "1")).func.view_class()
        public = all(isinstance(p, AllowAny) for p in view.get_permissions())
        assert ({} in operation["security"]) is public, (method, path)
        assert {"tokenAuth": []} in operation["security"], (method, path)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", PAGED)
def test_cursor_paged_lists_are_documented_as_paged(schema, path):
    operation = schema["paths"][path]["get"]
    assert "cursor" in {p["name"] for p in operation["parameters"]}
    page = _resolve(schema, operation["responses"]["200"]["content"]["application/json"]["schema"])
    assert {"next", "previous", "results"} <= set(page["properties"])
    assert page["properties"]["results"]["type"] == "array"


@pytest.mark.parametrize("path", JSON_ONLY)
def test_json_only_bodies_advertise_only_json(schema, path):
    body = schema["paths"][path]["post"]["requestBody"]["content"]
    assert list(body) == ["application/json"]
    records = _resolve(schema, body["application/json"]["schema"])["properties"]
    listed = records.get("records") or records["receipts"]
    assert listed["maxItems"] == 10_000 and "$ref" in listed["items"]


def test_scan_records_are_declared_field_by_field(schema):
    body = schema["paths"]["/api/v1/venues/scans/"]["post"]["requestBody"]["content"]["application/json"]
    record = _resolve(schema, _resolve(schema, body["schema"])["properties"]["records"]["items"])
    assert set(record["required"]) == {"id_number", "venue", "scanned_at"}
    assert record["properties"]["id_number"]["minLength"] == record["properties"]["id_number"]["maxLength"] == 18
    assert record["properties"]["scanned_at"]["format"] == "date-time"
    assert record["properties"]["venue"]["minLength"] == 1


def test_required_text_declares_min_length_only_on_requests(schema):
    components = schema["components"]["schemas"]
    assert components["AppealCloseApiInputRequest"]["properties"]["reason"]["minLength"] == 1
    assert "minLength" not in components["AppealSummary"]["properties"]["outcome"]  # "" while open


@pytest.mark.django_db
def test_the_server_answers_what_the_schema_documents():
    """A form body to a JSON-only operation is the documented 415, a bad cursor the documented
    404; both with the ErrorDetail shape."""
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(
        user=UserFactory(role=User.Role.INTEGRATION)).key)
    form = client.post("/api/v1/ingest/arrivals/", {"records": "x"})
    assert form.status_code == 415 and form.json()["code"] == "unsupported_media_type"
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(
        user=UserFactory(role=User.Role.SUPERVISOR)).key)
    bad_cursor = client.get("/api/v1/venues/", {"cursor": "not-a-cursor"})
    assert bad_cursor.status_code == 404 and set(bad_cursor.json()) == {"detail", "code", "errors", "extra"}


@pytest.mark.django_db
def test_a_limit_reached_answers_the_documented_429_with_retry_after(schema, settings):
    """The health-code look-up's daily cap: a service's `message`/`extra`, one of the shapes the
    operation's 429 documents (it documented only `detail`), and Retry-After as the 429 says."""
    settings.HEALTH_CODE_LOOKUPS_PER_DAY = 0
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(
        user=UserFactory(role=User.Role.OPERATOR)).key)
    capped = client.post("/api/v1/residents/health-code/", {"id_number": "x", "reason": "r"}, format="json")
    assert capped.status_code == 429 and int(capped["Retry-After"]) > 0
    documented = schema["paths"]["/api/v1/residents/health-code/"]["post"]["responses"]["429"]
    shape = _resolve(schema, documented["content"]["application/json"]["schema"])
    assert set(capped.json()) == set(shape["required"]) and capped.json()["code"] == "limit_reached"
    assert "Retry-After" in documented["description"]


def test_choice_filters_document_their_choices(schema):
    """A list filter that only takes some values says which (a generated client sent popup_type=1986,
    documented as any integer, and got 400 "Invalid filter")."""
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/appeals/"]["get"]["parameters"]}
    assert parameters["popup_type"]["enum"] == [1, 2, 3, 4, 5]
    assert parameters["priority"]["enum"]


def test_path_and_header_parameters_declare_what_the_server_takes(schema):
    """A reference the server would refuse, or an Idempotency-Key it would refuse, is one the
    schema refuses too (a generated client validates before sending)."""
    import re

    for path, method, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "reference" and parameter["in"] == "path":
                pattern = parameter["schema"]["pattern"]
                assert re.fullmatch(pattern.strip("^$"), "T15553333") and not re.search(pattern, "T" * 21)
            if parameter["name"] == "Idempotency-Key":
                assert parameter["schema"]["maxLength"] == 200 and parameter["schema"]["minLength"] == 1
                assert not re.search(parameter["schema"]["pattern"], "é") and re.search(
                    parameter["schema"]["pattern"], "retry-1")
            if parameter["in"] == "path" and parameter["schema"]["type"] == "integer":
                assert parameter["schema"]["minimum"] == 0, (method, path)


def test_filters_from_the_database_are_enumerated(db):
    """A district the appeals list takes is listed as an enum (it refuses any other)."""
    from django.core.cache import cache

    from communities.models import District

    District.objects.get_or_create(code="999999", defaults={"name": "测试区"})
    cache.clear()
    fresh = SchemaGenerator().get_schema(request=None, public=True)
    parameters = {p["name"]: p["schema"] for p in fresh["paths"]["/api/v1/appeals/"]["get"]["parameters"]}
    assert set(parameters["district"]["enum"]) == set(District.objects.values_list("pk", flat=True))
    assert fresh["paths"]["/api/v1/communities/find/"]["get"]["parameters"][0].get("required", False) is False
