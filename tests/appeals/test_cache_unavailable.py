"""Redis down is an empty cache, not a 500 (healthkit/cache.py): the console, the dashboard, the
resident pages and the API go on (limits and throttles let requests through, drop-downs are read
from the database), a one-time code is refused politely rather than sent uncheckable, and the
readiness probe says the cache is down."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import caches
from django.urls import reverse
from rest_framework.test import APIClient

from appeals.models import Appeal
from healthkit import cache as resilient
from healthkit.models import SmsMessage
from tests.factories import ResidentFactory, make_id_number
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]

# Nothing listens on port 1: every call fails at once, as with Redis stopped.
UNREACHABLE = {"default": {"BACKEND": "healthkit.cache.ResilientRedisCache", "LOCATION": "redis://127.0.0.1:1/0",
                           "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}


@pytest.fixture
def redis_down(settings):
    settings.CACHES = UNREACHABLE
    resilient._last_logged = 0.0
    yield caches["default"]


def test_the_cache_answers_as_an_empty_one_that_keeps_nothing(redis_down, caplog):
    cache = redis_down
    with caplog.at_level(logging.WARNING, logger="healthkit.cache"):
        assert cache.get("k", "fallback") == "fallback"
        assert cache.add("k", 1) is False  # not kept: a caller that needs it can tell
        cache.set("k", 1)
        assert cache.get_many(["k"]) == {} and cache.has_key("k") is False
        with pytest.raises(ValueError):
            cache.incr("k")
        assert cache.set_many({"a": 1, "b": 2}) == ["a", "b"]
        assert cache.delete("k") is False and cache.touch("k") is False
        assert cache.get_or_set("k", 5) == 5
    # one line for the whole burst, naming the failure's class only
    [line] = [r.getMessage() for r in caplog.records]
    assert line == "cache unavailable: ConnectionError on get; serving without it"


def test_a_redis_cache_url_gets_the_resilient_backend_and_timeouts():
    """CACHE_URL=rediscache://... (the deployment's, .env.example) is read into this backend with
    socket timeouts; a fresh process, as the settings are read once."""
    code = ("import django; django.setup(); from django.conf import settings; "
            "c = settings.CACHES['default']; print(c['BACKEND'], c['OPTIONS']['socket_timeout'], "
            "c['OPTIONS']['socket_connect_timeout'])")
    env = {**os.environ, "CACHE_URL": "rediscache://127.0.0.1:6379/1", "CACHE_SOCKET_TIMEOUT": "0.25",
           "DJANGO_SETTINGS_MODULE": "healthkit.settings", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,  # noqa: S603
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["healthkit.cache.ResilientRedisCache", "0.25", "0.25"]


def test_console_pages_work_without_the_cache(redis_down, client, enrolled_operator, supervisor):
    AppealFactory(category=Appeal.Category.STRANDED)
    queue = client.get(reverse("appeals:queue"), {"queue": "open", "district": "1"})
    assert queue.status_code == 200
    client.force_login(supervisor)
    assert client.get(reverse("oversight:dashboard")).status_code == 200


def test_a_resident_asking_for_a_code_is_refused_politely_and_sent_nothing(redis_down, client):
    resident = ResidentFactory(name="王五")
    response = client.post(reverse("appeals:file-identify"), {
        "name": "王五", "id_number": resident.reveal_id_number(), "phone": "13600001111"},
        HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "Codes cannot be sent for a moment. Nothing you typed is lost" in response.content.decode()
    assert not SmsMessage.objects.exists()  # no code that could never be checked


def test_the_public_api_is_not_throttled_into_errors(redis_down):
    response = APIClient().get(reverse("api-community-find"), {"q": "望京"})
    assert response.status_code == 200


def test_the_readiness_probe_says_the_cache_is_down(redis_down, client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    assert response.json()["checks"]["cache"] is False


def test_rate_limits_let_requests_through_while_the_cache_is_down(redis_down, settings):
    from appeals import ratelimit

    settings.APPEALS_RATE_LIMITS = {**settings.APPEALS_RATE_LIMITS, "file_ip": "1/3600"}
    for _ in range(3):
        ratelimit.hit("file_ip", make_id_number())  # never RateLimited: nothing is counted


def test_creation_forms_are_not_refused_as_already_sent_while_redis_is_down(redis_down):
    """The double-submit guard (healthkit.concurrency.once) is open without the cache: add() is
    False there as for a token already used, and refusing would stop every filing."""
    from healthkit.concurrency import once

    ran = []
    for _ in range(2):
        with once("phone-entry", "same-token"):
            ran.append(True)

    assert ran == [True, True]
