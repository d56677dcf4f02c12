"""Content-Security-Policy on every page: scripts only from our own origin, no inline script or
event handler in any template, and the API docs built from local (sidecar) files, not a CDN."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from communities.models import User
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
# an executable <script> without src (a JSON data block, type="application/json", runs nothing)
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:ld\+)?json\")[^>]*>", re.I)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


def template_files() -> list[Path]:
    dirs = [ROOT / "templates", *ROOT.glob("*/templates"), *ROOT.glob("*/*/templates")]
    return [f for d in dirs for f in d.rglob("*.html")]


def test_no_template_has_inline_script_or_event_handlers():
    files = template_files()
    assert len(files) > 20
    offenders = [str(f.relative_to(ROOT)) for f in files
                 if INLINE_SCRIPT.search(f.read_text()) or HANDLER.search(f.read_text())
                 or "javascript:" in f.read_text()]
    assert offenders == []


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in header.split(";") if part.strip()}


@pytest.mark.django_db
def test_every_kind_of_page_sends_the_policy_and_no_inline_script(client):
    admin = UserFactory(role=User.Role.ADMINISTRATOR, is_staff=True, is_superuser=True)
    pages = ["/", reverse("login"), reverse("appeals:status"), reverse("api-docs")]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        directives = policy(response)
        assert directives["script-src"] == "script-src 'self'" and "object-src 'none'" in directives.values()
        assert not INLINE_SCRIPT.search(response.content.decode()), url
    client.force_login(admin)
    for url in [reverse("console-home"), reverse("admin:index"), reverse("admin:appeals_appeal_changelist")]:
        response = client.get(url)
        assert response.status_code == 200 and "script-src 'self'" in response["Content-Security-Policy"], url
        assert not INLINE_SCRIPT.search(response.content.decode()), url


@pytest.mark.django_db
def test_api_docs_come_from_local_files(client):
    page = client.get(reverse("api-docs")).content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith(("/", settings.STATIC_URL)) and "//" not in s for s in sources), sources
    assert any("swagger-ui-bundle.js" in s and s.startswith("/static/drf_spectacular_sidecar/") for s in sources)
    script = client.get(reverse("api-docs") + "?script=")
    assert script.status_code == 200 and "application/javascript" in script["Content-Type"]
    assert "SwaggerUIBundle" in script.content.decode()
