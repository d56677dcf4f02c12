"""An attacker's walk over every URL of the role matrix: no page sends anybody to another site
(`next=`, `from=`, `back=` and the like, on GET and on the login's POST), and no form a signed-in
person can send is taken without its CSRF token (a page elsewhere making their browser post)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.test_url_role_matrix import MATRIX, ROLES, _url, client_for, world  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

ELSEWHERE = ("https://evil.example/", "//evil.example/", "/\\evil.example/", "https:evil.example",
             "\\\\evil.example", "http://testserver@evil.example/", " //evil.example")
REDIRECT_PARAMS = ("next", "from", "back", "return", "return_to", "redirect", "url", "to")


def _off_site(location: str) -> bool:
    parts = urlsplit(location.strip().replace("\\", "/"))
    return bool(parts.netloc) and parts.netloc not in ("testserver",)


def test_no_page_redirects_to_another_site(world):  # noqa: F811 - the matrix's fixture
    clients = {role: client_for(role, world) for role in ("anonymous", *ROLES)}
    failures, tried = [], 0
    for name, (key, expected) in MATRIX.items():
        if name == "admin:*":
            continue
        for role in ("anonymous", *ROLES):
            if role not in expected or expected[role] not in (200, 302):
                continue
            url = _url(name, world, key, role)
            for target in ELSEWHERE:
                tried += 1
                answer = clients[role].get(url, dict.fromkeys(REDIRECT_PARAMS, target))
                if answer.status_code in (301, 302, 303, 307, 308) and _off_site(answer["Location"]):
                    failures.append(f"{role} GET {name} -> {answer['Location']}")
            break  # each page once, as the first role that opens it
    assert tried > 300
    assert not failures, "\n".join(failures)


def test_the_login_and_the_language_switch_stay_on_this_site(world):  # noqa: F811
    from tests.factories import UserFactory

    person = UserFactory(username="walker")
    for target in ELSEWHERE:
        client = Client()
        answer = client.post("/accounts/login/", {"username": person.username, "password": "pass-1234-word",
                                                  "next": target})
        assert not _off_site(answer.get("Location", "")), target
        answer = client.post("/i18n/setlang/", {"language": "en", "next": target}, HTTP_REFERER=target)
        assert not _off_site(answer.get("Location", "")), target


def test_every_form_post_without_its_csrf_token_is_refused(world):  # noqa: F811
    """Each URL, as a signed-in role that may open it, POSTed without the token: 403, never run."""
    failures, tried = [], 0
    for role in ROLES:
        if role == "integration":  # a token, not a browser session: nothing to forge
            continue
        client = client_for(role, world)
        client.handler.enforce_csrf_checks = True
        for name, (key, expected) in MATRIX.items():
            if name == "admin:*" or expected.get(role) not in (200, 405):
                continue
            url = _url(name, world, key, role)
            if url.startswith("/open311/") or name in ("set_language", "healthz", "readyz"):
                continue  # Open311 is token-authenticated (api_key); probes take no POST
            tried += 1
            answer = client.post(url, {"reason": "forged", "decision": "accept"})
            if answer.status_code not in (401, 403, 405):
                failures.append(f"{role} POST {name}: {answer.status_code}")
    assert tried > 100
    assert not failures, "\n".join(failures)
