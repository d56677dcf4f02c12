"""API tokens: a staff member's token is no way round the console's second factor and does not
live for ever; an integration client's lasts until an administrator rotates or revokes it; a
deactivated account's token stops at once. Every API view authenticates tokens through the one
door (healthkit.auth.ApiTokenAuthentication), and Open311's api_key through the same rule."""

import datetime as dt

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.views import APIView

from communities.models import User
from healthkit.auth import ApiTokenAuthentication
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

APPEALS = "/api/v1/appeals/"
OPEN311_READ = "/open311/v2/requests.json"
INGEST = "/api/v1/ingest/local-cases/"


def _views(resolver: URLResolver | None = None):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from _views(entry)
        elif isinstance(entry, URLPattern):
            view = getattr(entry.callback, "view_class", None) or getattr(entry.callback, "cls", None)
            if isinstance(view, type) and issubclass(view, APIView):
                yield entry, view


def test_every_api_view_reads_tokens_through_the_one_door():
    seen = 0
    for pattern, view in _views():
        classes = view().get_authenticators()
        seen += 1
        raw = [type(a).__name__ for a in classes
               if isinstance(a, TokenAuthentication) and not isinstance(a, ApiTokenAuthentication)]
        assert not raw, f"{view.__name__} ({pattern.pattern}) reads tokens with {raw}"
    assert seen > 20


def _issue(user) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(user=user).key)
    return client


@pytest.mark.parametrize("role", [User.Role.OPERATOR, User.Role.COMMUNITY_WORKER, User.Role.SUPERVISOR,
                                  User.Role.ADMINISTRATOR])
def test_a_staff_token_needs_a_confirmed_second_factor(role):
    person = UserFactory(role=role)
    client = _issue(person)
    assert client.get(APPEALS).status_code == 200  # tests issue tokens with a device (conftest)
    TOTPDevice.objects.filter(user=person).update(confirmed=False)
    refused = client.get(APPEALS)
    assert refused.status_code == 401 and "second factor" in refused.json()["detail"]
    assert client.get(OPEN311_READ, HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"]).status_code == 403


def test_a_staff_token_expires_after_the_configured_hours(settings):
    settings.STAFF_API_TOKEN_HOURS = 8
    person = UserFactory(role=User.Role.OPERATOR)
    client = _issue(person)
    Token.objects.filter(user=person).update(created=timezone.now() - dt.timedelta(hours=7, minutes=59))
    assert client.get(APPEALS).status_code == 200
    Token.objects.filter(user=person).update(created=timezone.now() - dt.timedelta(hours=8, minutes=1))
    expired = client.get(APPEALS)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert not Token.objects.filter(user=person).exists()  # gone, not merely refused


def test_logging_out_of_the_console_ends_the_staff_token(client):
    person = UserFactory(role=User.Role.OPERATOR)
    api = _issue(person)
    client.force_login(person)
    client.post(reverse("logout"))
    assert api.get(APPEALS).status_code == 401
    assert not Token.objects.filter(user=person).exists()


def test_a_password_change_ends_the_staff_token_not_an_integration_clients():
    person, lab = UserFactory(role=User.Role.SUPERVISOR), UserFactory(role=User.Role.INTEGRATION)
    api, feed = _issue(person), _issue(lab)
    person.set_password("another-pass-5678")
    person.save()
    lab.set_password("another-pass-5678")
    lab.save()
    assert api.get(APPEALS).status_code == 401
    assert feed.post(INGEST, {"records": []}, format="json").status_code == 200


@pytest.mark.parametrize("role", [User.Role.OPERATOR, User.Role.INTEGRATION])
def test_a_deactivated_accounts_token_stops_at_once(role):
    user = UserFactory(role=role)
    client = _issue(user)
    url, ok = (INGEST, 200) if role == User.Role.INTEGRATION else (APPEALS, 200)
    call = (lambda: client.post(url, {"records": []}, format="json")) if role == User.Role.INTEGRATION \
        else (lambda: client.get(url))
    assert call().status_code == ok
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert call().status_code == 401
    key = client._credentials["HTTP_AUTHORIZATION"]
    assert client.get(OPEN311_READ, HTTP_AUTHORIZATION=key).status_code == 403


def test_an_integration_token_lasts_until_rotated(client, settings):
    lab = UserFactory(role=User.Role.INTEGRATION)
    feed = _issue(lab)
    Token.objects.filter(user=lab).update(created=timezone.now() - dt.timedelta(days=400))
    assert feed.post(INGEST, {"records": []}, format="json").status_code == 200
    assert not TOTPDevice.objects.filter(user=lab).exists()  # a system has no second factor
    # an administrator rotates it: delete the token, issue a new one (admin: Auth Token)
    client.force_login(UserFactory(role=User.Role.ADMINISTRATOR, is_staff=True, is_superuser=True))
    Token.objects.filter(user=lab).delete()
    assert client.post("/admin/authtoken/tokenproxy/add/", {"user": lab.pk}).status_code == 302
    assert feed.post(INGEST, {"records": []}, format="json").status_code == 401
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.get(user=lab).key)
    assert fresh.post(INGEST, {"records": []}, format="json").status_code == 200


def test_the_admin_issues_a_staff_token_only_with_a_second_factor(client):
    client.force_login(UserFactory(role=User.Role.ADMINISTRATOR, is_staff=True, is_superuser=True))
    person = UserFactory(role=User.Role.OPERATOR)
    refused = client.post("/admin/authtoken/tokenproxy/add/", {"user": person.pk})
    assert refused.status_code == 200 and not Token.objects.filter(user=person).exists()
    TOTPDevice.objects.create(user=person, name="phone", confirmed=True)
    assert client.post("/admin/authtoken/tokenproxy/add/", {"user": person.pk}).status_code == 302
    assert Token.objects.filter(user=person).exists()
