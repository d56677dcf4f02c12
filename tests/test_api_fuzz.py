"""A bounded schemathesis run over every REST operation of the OpenAPI schema, once per role
(each with its own token, and anonymous): no answer may be a 5xx, and every answer must be a
status code, media type and body that the schema documents for that operation.

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
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
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
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app)
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
