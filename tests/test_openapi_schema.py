"""The OpenAPI schema is a valid OpenAPI document that says what the server does: paged lists
as paged, every error answer with its shape, JSON-only bodies as JSON only, record limits."""

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
def schema() -> dict:
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


def test_every_operation_documents_its_errors_with_their_shapes(schema):
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        assert "400" in responses, (method, path)
        if path != "/api/v1/communities/find/":
            assert {"401", "403"} <= set(responses), (method, path)
        if method == "post":
            assert {"413", "415"} <= set(responses), (method, path)
        assert "503" in responses, (method, path)
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                body = response["content"]["application/json"]["schema"]
                assert body.get("$ref") or body.get("anyOf"), (method, path, code)
    application = schema["components"]["schemas"]["ApplicationError"]
    assert set(application["required"]) == {"message", "extra"}
    assert schema["components"]["schemas"]["ErrorDetail"]["required"] == ["detail"]
    throttled = [p for p, m, op in _operations(schema) if "429" in op["responses"]]
    assert "/api/v1/residents/health-code/" in throttled and "/api/v1/communities/find/" in throttled


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
    assert form.status_code == 415 and set(form.json()) == {"detail"}
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(
        user=UserFactory(role=User.Role.SUPERVISOR)).key)
    bad_cursor = client.get("/api/v1/venues/", {"cursor": "not-a-cursor"})
    assert bad_cursor.status_code == 404 and set(bad_cursor.json()) == {"detail"}


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
    shapes = [set(_resolve(schema, alternative)["required"])
              for alternative in documented["content"]["application/json"]["schema"]["anyOf"]]
    assert set(capped.json()) in shapes and "Retry-After" in documented["description"]


def test_choice_filters_document_their_choices(schema):
    """A list filter that only takes some values says which (a generated client sent popup_type=1986,
    documented as any integer, and got 400 "Invalid filter")."""
    parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/appeals/"]["get"]["parameters"]}
    assert parameters["popup_type"]["enum"] == [1, 2, 3, 4, 5]
    assert parameters["priority"]["enum"]
