"""Load-balancer probes: /healthz says the process is alive, /readyz that the database, broker
and cache answer and every migration is applied; anonymous callers learn only ok/unavailable."""

from unittest import mock

import pytest

from healthkit import views_health
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_alive_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_a_failing_check_is_503_without_details_for_anonymous(client):
    boom = mock.Mock(side_effect=ConnectionRefusedError("amqp://guest:secret@10.0.0.5:5672 refused"))
    with mock.patch.dict(views_health.CHECKS, {"broker": boom}):
        response = client.get("/readyz")
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}
    assert b"secret" not in response.content and b"10.0.0.5" not in response.content


def test_administrators_see_which_check_failed(client):
    client.force_login(UserFactory(role="administrator", username="ops-admin"))
    with mock.patch.dict(views_health.CHECKS, {"cache": mock.Mock(side_effect=RuntimeError("down"))}):
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": True, "migrations": True, "broker": True, "cache": False}
    assert b"down" not in response.content


def test_unapplied_migrations_mean_not_ready(client):
    views_health._migrated = False
    with mock.patch.object(views_health.MigrationExecutor, "migration_plan", return_value=[("x", False)]):
        assert client.get("/readyz").status_code == 503
    assert client.get("/readyz").status_code == 200
