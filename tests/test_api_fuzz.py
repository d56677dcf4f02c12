"""A bounded schemathesis run over every REST operation of the OpenAPI schema, once per role
(each with its own token, and anonymous): no answer may be a 5xx; every answer must be a status
code, media type, headers and body that the schema documents for that operation; a request the
schema forbids must be refused (negative_data_rejection: a pattern, enum, bound or required flag
the server does not enforce, or an unknown parameter it ignores, fails); and a request the schema
allows must not be refused as malformed (positive_data_accepted below). Then, per operation, what
schemathesis checks in its coverage phase: an undeclared method is a 405 with Allow, a missing
or wrong token a 401 (never ignored), every refusal in the one error shape.

Path parameters point at real objects of a small world (an appeal, its evidence, a clearance
task, a risk window), so generated bodies reach the services rather than stopping at a 404.
Deterministic (derandomized Hypothesis, no example database) and bounded: EXAMPLES positive and
EXAMPLES negative cases per operation and role, no shrinking.
"""

import os

import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from appeals.models import Appeal
from appeals.services import evidence_store
from communities.models import User
from tests.factories import CommunityFactory, PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory, upload
from tests.factories.clearance import ClearanceTaskFactory
from tests.factories.venues import RiskWindowFactory, VenueFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "4"))  # raise for a deeper run by hand
ONLY_ROLES = os.environ.get("API_FUZZ_ROLES", "")  # e.g. "integration,operator" for a focused run
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
# Ids of objects: the schema says an id is an integer, not which objects exist.
OBJECT_IDS = {"community", "venue", "managers", "assigned_to"}


def positive_data_accepted(ctx, response, case) -> None:
    """schemathesis' positive_data_acceptance, minus what no schema can say: a request the
    schema allows may be refused by a service (`refused`: "this appeal is closed"), for an id
    that names no object, by a rule across fields (`non_field_errors`: "an ID number or a
    phone"), or for a NUL in the name of a property the body may add (OpenAPI 3.0 has no
    `propertyNames`); any other 400 means the schema allows what the server refuses."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code != 400:
        return
    body = response.json()
    if body["code"] == "refused" or (body["code"] == "invalid"
                                     and set(body["errors"]) <= OBJECT_IDS | {"non_field_errors"}):
        return
    if body["code"] == "parse_error" and str(body["extra"].get("field", "")).endswith("<key>"):
        return
    raise AssertionError(f"A request the schema allows was refused: {body}")


def negative_data_refused(ctx, response, case) -> None:
    """schemathesis' negative_data_rejection, where a bulk endpoint refuses bad records its
    documented way: 200 with each one named under `rejected` (the good ones are kept)."""
    if response.status_code == 200 and response.request.method == "POST":
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("rejected"), list) and body["rejected"]:
            return
    negative_data_rejection(ctx, response, case)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_refused, positive_data_accepted]
ROLES = ("anonymous", "integration", "operator", "community_worker", "supervisor", "administrator",
         "venue_manager")


@pytest.fixture
def app():
    """Django's WSGI handler over the test's connection (like the test client: the handler must
    not close the connection in the test transaction at the end of each request)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(db) -> dict:
    """Tokens per role and the ids that path parameters take."""
    home = CommunityFactory()
    resident = ResidentFactory(community=home)
    popup = PopupCaseFactory(resident=resident, popup_type=3)
    users = {role: UserFactory(role=role, communities=[home] if role == User.Role.COMMUNITY_WORKER else [])
             for role in ROLES if role != "anonymous"}
    appeal = AppealFactory(resident=resident, popup=popup, community=home, routed_community=home,
                           status=Appeal.Status.ROUTED, routed_at=timezone.now(),
                           created_by=users["integration"], channel=Appeal.Channel.OPEN311)
    evidence = evidence_store(upload=upload(), appeal=appeal)
    task = ClearanceTaskFactory(resident=resident, community=home, popup=popup, appeal=appeal)
    window = RiskWindowFactory(venue=VenueFactory(community=home, managers=[users["venue_manager"]]))
    return {
        "tokens": {role: Token.objects.create(user=user).key for role, user in users.items()},
        "ids": {"/api/v1/appeals/evidence/": evidence.pk, "/api/v1/clearance/tasks/": task.pk,
                "/api/v1/venues/risk-windows/": window.pk},
        "reference": appeal.reference,
    }


def _path_parameters(path: str, world: dict) -> dict:
    params = {}
    if "{reference}" in path:
        params["reference"] = world["reference"]
    if "{id}" in path:
        params["id"] = next(pk for prefix, pk in world["ids"].items() if path.startswith(prefix))
    return params


def _run(strategy, headers: dict) -> None:
    @given(case=strategy)
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case):
        cache.clear()  # throttles and rate limits count per case, not across the run
        # Each case starts from the same world and one failing statement cannot poison the next.
        savepoint = transaction.savepoint()
        try:
            response = case.call(headers=headers)
        finally:
            transaction.savepoint_rollback(savepoint)
        case.validate_response(response, checks=CHECKS)

    run()


def test_every_operation_answers_as_documented_and_never_5xx(app, world):
    raw = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app).raw_schema
    for item in raw["paths"].values():  # JSON where offered: a form cannot carry null, and DRF reads
        for operation in item.values():  # an empty form field as left out (docs/engine.md)
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                operation["requestBody"]["content"] = {"application/json": content["application/json"]}
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = app
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    failures: list[str] = []
    for role in [r for r in ROLES if not ONLY_ROLES or r in ONLY_ROLES.split(",")]:
        headers = {"Authorization": f"Token {world['tokens'][role]}"} if role != "anonymous" else {}
        for operation in operations:
            raw = schema.raw_schema["paths"][operation.path][operation.method.lower()]
            # Only pinned path parameters and no body: nothing a negative case could change.
            negatable = "requestBody" in raw or any(p["in"] == "query" for p in raw.get("parameters", []))
            for mode in MODES if negatable else MODES[:1]:
                strategy = operation.as_strategy(
                    generation_mode=mode, path_parameters=_path_parameters(operation.path, world))
                try:
                    _run(strategy, headers)
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported together below
                    failures.append(f"{role} {operation.label} [{mode.value}]: {str(exc)[:1500]}")
    assert not failures, f"{len(failures)} failing operations:\n" + "\n\n".join(failures)


def test_undeclared_methods_and_missing_tokens_are_refused_as_documented(world):
    """The coverage-phase checks (unsupported_method, ignored_auth) over every operation: a
    method the schema does not list is a 405 naming the ones it does (Allow); an operation that
    needs a token answers 401 without one and with a wrong one, whatever else is sent."""
    from django.urls import resolve
    from drf_spectacular.generators import SchemaGenerator
    from rest_framework.permissions import AllowAny
    from rest_framework.test import APIClient

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    shape = {"detail", "code", "errors", "extra"}
    for path, item in paths.items():
        url = path.format(**_path_parameters(path, world))
        declared = {method.upper() for method in item}
        client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
        client.credentials(HTTP_AUTHORIZATION=f"Token {world['tokens']['administrator']}")
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - declared:
            response = client.generic(method, url)
            assert response.status_code == 405, (method, path, response.status_code)
            assert set(response.json()) == shape and declared <= set(response["Allow"].split(", ")), (method, path)
        view = resolve(url).func.view_class()
        if all(isinstance(p, AllowAny) for p in view.get_permissions()):
            continue
        for credentials in ({}, {"HTTP_AUTHORIZATION": "Token " + "0" * 40}):
            anonymous = APIClient(HTTP_ACCEPT_LANGUAGE="en", **credentials)
            for method in declared:
                response = anonymous.generic(method, url, "{}", content_type="application/json")
                assert response.status_code == 401, (method, path, credentials, response.status_code)
                assert set(response.json()) == shape and response["WWW-Authenticate"].startswith("Token")
