"""Django's own errors under /api/ (no route matched, a crash, a path Django or the input boundary
refuses) answer the {"detail"} JSON the schema documents, in the reader's language; the console
keeps its HTML pages."""

from unittest import mock

import psycopg
import pytest
from django.conf import urls as django_urls
from django.db import InterfaceError, OperationalError
from django.test import Client
from django.urls import path, reverse
from rest_framework.authtoken.models import Token

from communities.models import User
from healthkit import urls as root_urls
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _boom(request):
    raise RuntimeError("a bug")


urlpatterns = [*root_urls.urlpatterns, path("api/v1/boom/", lambda request: _boom(request)),
               path("console/boom/", lambda request: _boom(request))]
# the project's handlers (Django's defaults where it has none)
handler400, handler403, handler404, handler500 = (
    getattr(root_urls, name, getattr(django_urls, name)) for name in ("handler400", "handler403", "handler404", "handler500"))


@pytest.fixture
def api():
    user = UserFactory(role=User.Role.INTEGRATION)
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}", HTTP_ACCEPT_LANGUAGE="zh-hans",
                  raise_request_exception=False)


@pytest.mark.parametrize("url", ["/api/v1/venues/risk-windows/null,null/withdraw/", "/api/v1/no-such/",
                                 "/api/v1/clearance/tasks/1e9/"])
def test_an_api_path_no_route_matches_is_a_json_404(api, url):
    response = api.post(url, data="{}", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"] == ("未找到。")


def test_an_api_path_with_a_control_character_is_a_json_400_in_the_readers_language(api):
    response = api.get("/api/v1/appeals/A%07B/")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"detail", "code", "errors", "extra"}
    english = api.get("/api/v1/appeals/A%07B/", HTTP_ACCEPT_LANGUAGE="en").json()["detail"]
    assert english == "The address holds characters that are not allowed." != response.json()["detail"]


@pytest.mark.urls(__name__)
def test_a_crash_under_api_is_a_json_500_and_the_console_keeps_html(api):
    response = api.get("/api/v1/boom/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"detail", "code", "errors", "extra"} and "a bug" not in response.content.decode()
    console = api.get("/console/boom/")
    assert console.status_code == 500 and console["Content-Type"].startswith("text/html")


def test_outside_the_api_a_missing_page_stays_html(client):
    response = client.get("/console/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(("language", "words"), [("zh-hans", "页面没有找到"), ("en", "Page not found")])
def test_a_missing_console_page_is_a_page_in_the_readers_language(client, language, words):
    response = client.get("/console/no-such-page/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 404
    html = response.content.decode()
    assert words in html and f'<html lang="{language}">' in html
    assert "The requested resource was not found on this server" not in html


def test_a_console_page_the_role_may_not_open_is_a_403_page_in_chinese(client):
    client.force_login(UserFactory(role=User.Role.OPERATOR))
    response = client.get(reverse("oversight:dashboard"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 403
    assert "禁止访问" in response.content.decode()


@pytest.mark.urls(__name__)
def test_a_crash_on_a_console_page_is_a_500_page_in_chinese(api):
    response = api.get("/console/boom/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 500
    html = response.content.decode()
    assert "服务器错误" in html and '<html lang="zh-hans">' in html and "a bug" not in html


# --- a body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413 with the limit on every path, not "malformed" ---

def test_an_api_body_over_the_limit_is_a_json_413_saying_the_limit(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"records": ["' + "x" * 2000 + '"]}'
    response = api.post("/api/v1/ingest/stays/", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) == {"detail", "code", "errors", "extra"} and "1000\xa0字节" in response.json()["detail"]
    english = api.post("/api/v1/ingest/stays/", data=body, content_type="application/json",
                       HTTP_ACCEPT_LANGUAGE="en")
    assert english.json()["detail"] == ("The request body is too large (at most 1000\xa0bytes).")


def test_a_console_form_over_the_limit_is_a_413_page(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post(reverse("appeals:file-identify"), {"name": "x" * 2000}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 413 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "The request body is too large (at most 1000\xa0bytes)." in html and '<html lang="en">' in html


def test_an_open311_body_over_the_limit_is_a_413_in_its_error_list(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post("/open311/v2/requests.json", {"description": "x" * 2000}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 413
    assert response.json() == [{"code": 413, "description": "The request body is too large (at most 1000\xa0bytes)."}]


# --- the database unreachable: 503 with Retry-After in the reader's language, not a 500 ---

def _wrapped(psycopg_error: Exception) -> OperationalError:
    """What Django's DatabaseErrorWrapper raises for a driver error: its class, the driver's as cause."""
    try:
        raise psycopg_error
    except psycopg.Error as cause:
        try:
            raise OperationalError(*cause.args) from cause
        except OperationalError as wrapped:
            return wrapped


REFUSED = 'connection to server at "10.9.8.7", port 5432 failed: Connection refused'


def test_an_api_request_with_the_database_unreachable_is_a_json_503_with_retry_after(api, caplog):
    with mock.patch("rest_framework.authentication.TokenAuthentication.authenticate_credentials",
                    side_effect=_wrapped(psycopg.OperationalError(REFUSED))):
        response = api.get("/api/v1/clearance/tasks/")
        english = api.get("/api/v1/clearance/tasks/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503 and response["Content-Type"] == "application/json"
    assert int(response["Retry-After"]) > 0
    assert set(response.json()) == {"detail", "code", "errors", "extra"}
    assert english.json()["detail"] == ("The service is briefly unavailable. Please try again in a few seconds.")
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "database unavailable: OperationalError" in logged
    assert "10.9.8.7" not in logged and "Traceback" not in logged and "/api/v1/clearance" not in logged


def test_a_console_page_with_the_database_gone_is_a_503_page():
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(role=User.Role.OPERATOR))
    with mock.patch("django.contrib.sessions.backends.db.SessionStore.load",
                    side_effect=_wrapped(psycopg.OperationalError("server closed the connection unexpectedly"))):
        response = client.get(reverse("oversight:dashboard"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503 and response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) > 0
    html = response.content.decode()
    assert "Please try again in a few seconds." in html and '<html lang="en">' in html


def test_open311_with_the_database_unreachable_is_a_503_in_its_own_error_list(client, caplog):
    unreachable = _wrapped(psycopg.OperationalError(REFUSED))
    with mock.patch("appeals.open311._client", side_effect=unreachable):
        response = client.get("/open311/v2/requests.json", HTTP_AUTHORIZATION="Token k", HTTP_ACCEPT_LANGUAGE="en")
        xml = client.get("/open311/v2/requests.xml", HTTP_AUTHORIZATION="Token k", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert response.json() == [{"code": 503, "description":
                                "The service is briefly unavailable. Please try again in a few seconds."}]
    assert xml.status_code == 503 and xml["Content-Type"].startswith("text/xml")
    assert b"<errors><error><code>503</code>" in xml.content
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "database unavailable: OperationalError" in logged and "10.9.8.7" not in logged


@pytest.mark.urls(__name__)
def test_a_closed_connection_is_a_503_and_a_serialization_failure_stays_a_500(api):
    with mock.patch(f"{__name__}._boom", side_effect=InterfaceError("connection already closed")):
        assert api.get("/api/v1/boom/").status_code == 503
    conflict = _wrapped(psycopg.errors.SerializationFailure("could not serialize access"))
    with mock.patch(f"{__name__}._boom", side_effect=conflict):
        response = api.get("/api/v1/boom/")
    assert response.status_code == 500 and not response.has_header("Retry-After")
