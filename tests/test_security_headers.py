"""Every answer carries the framing, script-policy and sniffing headers, and every answer that may
hold personal data `Cache-Control: no-store`: pages, files and exports (every URL of the role
matrix, signed in and not), and the answers a middleware gives on its own before any view runs (a
path with a control character, a body that cannot be decoded, a missing slash, the second factor
still owed). Those used to leave without X-Frame-Options, the Content-Security-Policy and no-store,
because the middlewares adding them sat inside the ones answering."""

import gzip

import pytest
from django.test import Client
from django.urls import reverse

from communities.models import User
from tests import test_url_role_matrix as matrix
from tests.factories import UserFactory
from tests.test_url_role_matrix import MATRIX, client_for

pytestmark = pytest.mark.django_db
world = matrix.world  # the role matrix's objects and URL arguments

NO_STORE_PREFIXES = ("/console/", "/admin/", "/api/", "/appeals/", "/clearance/", "/open311/", "/accounts/")


def _missing(response, *, signed_in: bool, path: str) -> list[str]:
    missing = []
    if response.get("X-Frame-Options") != "DENY":
        missing.append("X-Frame-Options")
    if "frame-ancestors 'none'" not in response.get("Content-Security-Policy", ""):
        missing.append("Content-Security-Policy")
    if response.get("X-Content-Type-Options") != "nosniff":
        missing.append("X-Content-Type-Options")
    if (signed_in or path.startswith(NO_STORE_PREFIXES)) and "no-store" not in response.get("Cache-Control", ""):
        missing.append("Cache-Control: no-store")
    return missing


def test_every_page_file_and_export_of_the_matrix_carries_the_headers(world):
    wrong = []
    for role in ("anonymous", "worker", "administrator", "integration"):
        client = client_for(role, world)
        for name, (key, _expected) in MATRIX.items():
            if name == "admin:*":
                continue
            url = reverse(name, kwargs=world.args[key] if key else None)
            for method in ("get", "post") if name != "logout" else ("get",):  # stay signed in
                response = getattr(client, method)(url)
                missing = _missing(response, signed_in=role in ("worker", "administrator"), path=url)
                if missing:
                    wrong.append(f"{role} {method.upper()} {url} ({response.status_code}): no {missing}")
    assert not wrong, "\n".join(wrong)


def _early_answers() -> list[tuple[str, Client, str, dict]]:
    """(what, client, path, request) for each answer a middleware gives before any view."""
    supervisor = UserFactory(role=User.Role.SUPERVISOR, is_staff=True)
    owes_code = Client()
    owes_code.login(username=supervisor.username, password="pass-1234-word")
    session = owes_code.session
    session.pop("otp_device_id", None)  # password given, second factor not yet
    session.save()
    anonymous = Client()
    return [
        ("control character in a console path", anonymous, "/console/appeals/%01/", {}),
        ("control character in an API path", anonymous, "/api/v1/appeals/%01/", {}),
        ("control character in a public path", anonymous, "/appeals/%01/", {}),
        ("a gzip body that is not gzip", anonymous, "/api/v1/ingest/test-results/",
         {"method": "post", "data": b"not gzip", "content_type": "application/json", "HTTP_CONTENT_ENCODING": "gzip"}),
        ("an encoding nobody reads", anonymous, "/appeals/file/",
         {"method": "post", "data": b"x", "content_type": "application/x-www-form-urlencoded",
          "HTTP_CONTENT_ENCODING": "br"}),
        ("a gzip bomb", anonymous, "/open311/v2/requests.json",
         {"method": "post", "data": gzip.compress(b"a" * 50_000_000), "content_type": "application/x-www-form-urlencoded",
          "HTTP_CONTENT_ENCODING": "gzip"}),
        ("a missing slash", anonymous, "/console/appeals", {}),
        ("second factor owed, console", owes_code, "/console/appeals/", {}),
        ("second factor owed, API", owes_code, "/api/v1/appeals/", {}),
    ]


def test_answers_given_before_any_view_carry_the_headers():
    wrong = []
    for what, client, path, request in _early_answers():
        request = dict(request)
        method = request.pop("method", "get")
        response = getattr(client, method)(path, **request)
        signed_in = client is not None and "_auth_user_id" in client.session
        assert response.status_code in (301, 302, 400, 403, 413, 415), (what, response.status_code)
        missing = _missing(response, signed_in=signed_in, path=path)
        if missing:
            wrong.append(f"{what}: {method.upper()} {path} ({response.status_code}) has no {missing}")
    assert not wrong, "\n".join(wrong)
