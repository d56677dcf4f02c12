"""Every 429 (a limit) and 503 (unavailable) the product sends says when to try again
(`Retry-After`, whole seconds) and why, in the reader's language: each door that refuses with
one, HTML, text, JSON or Open311, and any other answer through the middleware."""

import datetime as dt
from unittest import mock

import pytest
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.test import Client
from django.urls import path, reverse
from django.utils import translation
from django.utils.translation import gettext
from rest_framework.authtoken.models import Token

from appeals.clearance import services as clearance_services
from communities.models import User
from healthkit import clock, views_health
from healthkit import urls as root_urls
from tests.appeals.test_open311 import _file
from tests.factories import CommunityFactory, UserFactory, make_id_number
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory
from tests.factories.venues import VenueFactory

pytestmark = pytest.mark.django_db
LANGUAGES = ["en", "zh-hans"]
RATE_LIMITED = ("There have been too many attempts. Nothing you already sent is lost; please try again "
                "in about %(minutes)d minutes.")
REGISTER_RANGE = {"start": "2022-09-01T00:00", "end": "2022-09-02T00:00"}


def _limits(settings, **rules):
    settings.APPEALS_RATE_LIMITS = {**settings.APPEALS_RATE_LIMITS, **rules}


def login_lockout(client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    UserFactory(username="op-locked", role=User.Role.OPERATOR)
    for _ in range(2):
        client.post(reverse("login"), {"username": "op-locked", "password": "wrong"}, REMOTE_ADDR="10.7.0.1")
    response = client.post(reverse("login"), {"username": "op-locked", "password": "wrong"}, REMOTE_ADDR="10.7.0.1")
    return response, int(settings.AXES_COOLOFF_TIME.total_seconds()), "Too many failed logins"


def code_request(client, settings):
    _limits(settings, code_phone="0/3600")
    response = client.post(reverse("appeals:file-identify"),
                           {"name": "王五", "id_number": make_id_number(), "phone": "13600001111"})
    return response, 3600, (RATE_LIMITED, {"minutes": 60})


def status_lookup(client, settings):
    _limits(settings, status_ip="0/600")
    response = client.post(reverse("appeals:status"),
                           {"reference": "X", "id_number": make_id_number(), "phone": "13600001111"})
    return response, 600, (RATE_LIMITED, {"minutes": 10})


def open311_filing(client, settings):
    _limits(settings, file_ip="0/600")
    key = Token.objects.create(user=UserFactory(role=User.Role.INTEGRATION)).key
    return _file(client, key), 600, (RATE_LIMITED, {"minutes": 10})


def clearance_link(client, settings):
    settings.CLEARANCE_LINK_RATE_LIMIT = "0/600"
    return client.get(reverse("clearance:link", args=["any-token"])), 600, "Too many attempts from your network"


def checkpoint_lookup(client, settings):
    settings.CLEARANCE_LOOKUP_RATE_LIMIT = "0/300"
    client.force_login(WorkerFactory(communities=[CommunityFactory()]))
    response = client.post(reverse("clearance:checkpoint"), {"id_number": make_id_number(), "reason": "检查站"})
    return response, 300, "Too many look-ups; please wait a while before the next one."


def task_reveal(client, settings):
    settings.CLEARANCE_LOOKUP_RATE_LIMIT = "0/300"
    community = CommunityFactory()
    task = clearance_services.clearance_open_for_appeal(appeal=RoutedAppealFactory(resident__community=community))
    client.force_login(WorkerFactory(communities=[community]))
    response = client.post(reverse("clearance:task-action", args=[task.pk, "reveal"]), {"reason": "电话核实"})
    return response, 300, "Too many look-ups; please wait a while before the next one."


def _venue_over_the_hour(client, monkeypatch, kind):
    from venues import services

    monkeypatch.setattr(services, f"REGISTER_{kind}_PER_HOUR", 0)
    manager = UserFactory(role=User.Role.VENUE_MANAGER)
    client.force_login(manager)
    return VenueFactory(managers=[manager])


def register_page(client, settings, monkeypatch):
    venue = _venue_over_the_hour(client, monkeypatch, "PAGES")
    response = client.get(f"/console/venues/{venue.pk}/register/", REGISTER_RANGE)
    return response, None, "Too many look-ups of visitor registers this hour; please try again later."


def register_export(client, settings, monkeypatch):
    venue = _venue_over_the_hour(client, monkeypatch, "EXPORTS")
    response = client.get(f"/console/venues/{venue.pk}/register.csv", REGISTER_RANGE)
    return response, None, "Too many look-ups of visitor registers this hour; please try again later."


def health_code_cap(client, settings):
    settings.HEALTH_CODE_LOOKUPS_PER_DAY = 0
    token = Token.objects.create(user=UserFactory(role=User.Role.OPERATOR)).key
    response = client.post(reverse("api-health-code"), {"id_number": make_id_number(), "reason": "r"},
                           content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}")
    return response, None, None


def readiness(client, settings):
    with mock.patch.dict(views_health.CHECKS, {"broker": mock.Mock(side_effect=ConnectionRefusedError)}):
        return client.get("/readyz"), None, None


DOORS = [login_lockout, code_request, status_lookup, open311_filing, clearance_link, checkpoint_lookup,
         task_reveal, register_page, register_export, health_code_cap, readiness]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("door", DOORS, ids=lambda door: door.__name__)
def test_every_refusal_says_when_to_try_again_and_why_in_the_readers_language(door, language, settings,
                                                                            monkeypatch):
    # given a door over its limit (or a probe that is not ready), asked in one language
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    kwargs = {"monkeypatch": monkeypatch} if "monkeypatch" in door.__code__.co_varnames else {}
    response, seconds, message = door(client, settings, **kwargs)
    # then the answer is a 429/503 saying in how many seconds to come back
    assert response.status_code in (429, 503)
    assert response["Retry-After"].isdigit() and int(response["Retry-After"]) >= 1
    if seconds is not None:
        assert int(response["Retry-After"]) == seconds
    if message is not None:  # and why, in the reader's words
        text, params = message if isinstance(message, tuple) else (message, None)
        with translation.override(language):
            expected = gettext(text) % params if params else gettext(text)
        assert expected in response.content.decode()
        if language != "en":
            assert expected != (text % params if params else text), "untranslated: " + text


def test_a_register_limit_says_how_long_until_the_hour_turns(client, monkeypatch):
    venue = _venue_over_the_hour(client, monkeypatch, "EXPORTS")
    with clock.frozen_at(dt.datetime.fromtimestamp(3600 * 500_000 + 3000.2, tz=dt.UTC)):  # 10 min to the hour
        response = client.get(f"/console/venues/{venue.pk}/register.csv", REGISTER_RANGE)
    assert response.status_code == 429 and response["Retry-After"] == "600"


# Any other 429/503, whichever part of the site and however it was made, gets one too.
def _bare(status):
    return lambda request: HttpResponse("no", status=status)


urlpatterns = [
    path("console/bare-429/", _bare(429)),
    path("appeals/bare-503/", _bare(503)),
    path("api/v1/bare-429/", lambda request: JsonResponse({"detail": "slow down"}, status=429)),
    path("open311/v2/bare-503.json", lambda request: StreamingHttpResponse(iter([b"[]"]), status=503)),
    path("console/told-429/", lambda request: HttpResponse("no", status=429, headers={"Retry-After": "7"})),
    *root_urls.urlpatterns,
]


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("url", ["/console/bare-429/", "/appeals/bare-503/", "/api/v1/bare-429/",
                                 "/open311/v2/bare-503.json"])
def test_a_429_or_503_made_anywhere_without_a_wait_gets_the_default(client, url):
    response = client.get(url)
    assert response.status_code in (429, 503)
    assert response["Retry-After"] == ("60" if response.status_code == 429 else "5")


@pytest.mark.urls(__name__)
def test_a_wait_the_view_gave_is_kept(client):
    assert client.get("/console/told-429/")["Retry-After"] == "7"
