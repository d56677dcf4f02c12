"""Structured logs: LOG_FORMAT=json writes one JSON object per line with the request id, task id
and user id; plain text stays the default; another filter's rewriting (masking) applies."""

import json
import logging

import pytest

from healthkit.logs import ContextFilter, JsonFormatter
from tests.factories import UserFactory


class _Capture(logging.Handler):
    def __init__(self, formatter):
        super().__init__()
        self.setFormatter(formatter)
        self.addFilter(ContextFilter())
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


class _MaskTokens(logging.Filter):
    def filter(self, record):
        record.msg = str(record.msg).replace("tok-123", "***")
        return True


@pytest.fixture
def captured():
    handler = _Capture(JsonFormatter())
    handler.addFilter(_MaskTokens())
    logger = logging.getLogger("healthkit.views_health")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.mark.django_db
def test_a_request_logs_one_json_line_with_its_ids(client, captured, monkeypatch):
    from healthkit import views_health

    def failing():
        logging.getLogger("healthkit.views_health").warning("probe saw tok-123")
        raise RuntimeError("x")

    monkeypatch.setitem(views_health.CHECKS, "cache", failing)
    user = UserFactory(role="administrator", username="log-admin")
    client.force_login(user)
    response = client.get("/readyz", HTTP_X_REQUEST_ID="req-42")
    assert response["X-Request-ID"] == "req-42"
    events = [json.loads(line) for line in captured.lines]
    assert all("\n" not in line for line in captured.lines)
    first = events[0]
    assert first["message"] == "probe saw ***" and first["request_id"] == "req-42"
    assert first["user_id"] == str(user.pk) and first["task_id"] == "-" and first["level"] == "WARNING"
    assert any(e.get("exc_type") == "RuntimeError" for e in events)


def test_an_unsafe_request_id_is_replaced(rf):
    from healthkit.logs import RequestContextMiddleware, request_id_var

    seen = []
    middleware = RequestContextMiddleware(lambda request: seen.append(request_id_var.get()) or _response())
    request = rf.get("/", HTTP_X_REQUEST_ID="a b\nforged")
    request.user = None
    response = middleware(request)
    assert seen[0] != "a b\nforged" and len(seen[0]) == 32 and response["X-Request-ID"] == seen[0]


def _response():
    from django.http import HttpResponse

    return HttpResponse("ok")


def test_plain_is_the_default(settings):
    assert settings.LOG_FORMAT == "plain"
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "plain"
    assert "request_id" in settings.LOGGING["formatters"]["plain"]["format"]


@pytest.mark.django_db(transaction=True)  # on-commit work runs inside the request, as in production
def test_a_token_authenticated_api_call_logs_its_user():
    from unittest import mock

    from django.urls import reverse
    from kombu.exceptions import OperationalError as BrokerDown
    from rest_framework.authtoken.models import Token

    from healthkit import tasks
    from tests.factories import ResidentFactory

    handler = _Capture(JsonFormatter())
    logger = logging.getLogger("healthkit.queues")
    logger.addHandler(handler)
    user = UserFactory(role="integration", username="log-lab")
    token = Token.objects.create(user=user)
    resident = ResidentFactory()
    record = {"id_number": resident.reveal_id_number(), "lab": "x", "sample_id": "S1", "result": "negative",
              "sampled_at": "2022-07-01T08:00:00+08:00", "resulted_at": "2022-07-01T10:00:00+08:00"}
    try:
        with mock.patch.object(tasks.engine_evaluate_work, "delay", side_effect=BrokerDown("refused")):
            from django.test import Client

            response = Client().post(reverse("api-ingest-test-results"), {"records": [record]},
                                     content_type="application/json", HTTP_AUTHORIZATION=f"Token {token.key}")
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 200
    event = json.loads(handler.lines[0])
    assert event["user_id"] == str(user.pk) and event["logger"] == "healthkit.queues"
    assert resident.reveal_id_number() not in handler.lines[0]
