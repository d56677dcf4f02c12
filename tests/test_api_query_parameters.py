"""Every REST operation takes exactly the query parameters its schema lists (healthkit.api.ApiView):
a client's typo (`?statuss=open`) is a 400 naming it, not the whole list; a parameter sent twice or
empty is a 400 too; and the error is the API's one error shape."""

import pytest
from django.urls import resolve
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communities.models import User
from healthkit.api import ApiView
from tests.factories import UserFactory
from tests.factories.clearance import ClearanceTaskFactory

SHAPE = {"detail", "code", "errors", "extra"}


@pytest.fixture
def operations(db) -> list[tuple[str, str, dict]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(path, method, operation) for path, item in schema["paths"].items() for method, operation in item.items()]


def _url(path: str) -> str:
    return path.replace("{reference}", "T15553333").replace("{id}", "1")


def _client(role: str = User.Role.ADMINISTRATOR, **extra) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(
        user=UserFactory(role=role, is_superuser=True, **extra)).key)
    return client


def test_every_api_view_reads_its_query_at_the_one_boundary(operations):
    for path, _method, _operation in operations:
        assert issubclass(resolve(_url(path)).func.view_class, ApiView), path


@pytest.mark.django_db
def test_an_unknown_query_parameter_is_a_400_naming_it_on_every_operation(operations):
    client = _client()
    for path, method, operation in operations:
        known = "&queue=all" if path == "/api/v1/appeals/" else ""  # a known one beside it is not named
        response = getattr(client, method)(_url(path) + "?statuss=open" + known, format="json")
        body = response.json()
        assert response.status_code == 400, (method, path, response.status_code)
        assert set(body) == SHAPE and body["code"] == "unknown_parameters", (method, path, body)
        assert body["extra"]["unknown"] == ["statuss"] and "statuss" in body["detail"], (method, path)
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert set(body["extra"]["allowed"]) == declared, (method, path)  # what the schema lists, exactly
        assert "400" in operation["responses"] and "unknown_parameters" in operation["responses"]["400"]["description"]


@pytest.mark.django_db
def test_a_mistyped_filter_no_longer_lists_everything():
    ClearanceTaskFactory()
    client = _client(User.Role.SUPERVISOR)
    assert len(client.get("/api/v1/clearance/tasks/", {"state": "all"}).json()["results"]) == 1
    typo = client.get("/api/v1/clearance/tasks/", {"stat": "closed"})
    assert typo.status_code == 400 and typo.json()["extra"]["unknown"] == ["stat"]


@pytest.mark.django_db
@pytest.mark.parametrize(("query", "field"), [
    ("state=open&state=closed", "state"),  # which one? sent twice
    ("state=", "state"),  # empty: leave it out instead
    ("priority=9", "priority"),
    ("page_size=0", "page_size"),
    ("page_size=201", "page_size"),
    ("cursor=", "cursor"),
])
def test_a_query_value_the_schema_refuses_is_a_400_in_the_field_error_shape(query, field):
    response = _client(User.Role.SUPERVISOR).get("/api/v1/clearance/tasks/?" + query)
    body = response.json()
    assert response.status_code == 400 and set(body) == SHAPE and body["code"] == "invalid"
    assert list(body["errors"]) == [field]


@pytest.mark.django_db
def test_the_appeals_and_risk_window_lists_refuse_like_every_other(db):
    client = _client(User.Role.SUPERVISOR)
    appeals = client.get("/api/v1/appeals/", {"district": "0"})
    windows = client.get("/api/v1/venues/risk-windows/", {"state": "closed"})
    for response in (appeals, windows):
        assert response.status_code == 400 and set(response.json()) == SHAPE and response.json()["code"] == "invalid"
    assert list(appeals.json()["errors"]) == ["district"] and list(windows.json()["errors"]) == ["state"]
    assert client.get("/api/v1/appeals/", {"status": "new", "escalated": "false", "channel": "phone"}).status_code == 200
    assert client.get("/api/v1/communities/find/", {"q": ""}).json() == []
