"""A web request waits a bounded time for the database. A long job holding a hot row (or a table)
locked made a console action wait until the client gave up: gunicorn's threaded workers never
time a request out. In the web process every connection carries `lock_timeout` and
`statement_timeout` (DATABASE_WEB_* settings, set by healthkit.wsgi), and the timeout is a 503
with Retry-After and a message in the reader's language, not a 500 nor a page that never ends.

One test in process (the lock timeout on the test connection), one through real gunicorn with the
deployment's settings (healthkit.gunicorn_conf, healthkit.wsgi)."""

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.test import Client
from django.urls import reverse

from appeals.models import Appeal
from communities.models import User
from tests.concurrency import subprocess_database_url
from tests.factories import UserFactory
from tests.factories.appeals import AppealFactory

ROOT = Path(__file__).resolve().parent.parent
BUSY = "The records you asked for are busy (another task is changing them)"


def _hold_row_lock(appeal: Appeal) -> psycopg.Connection:
    """Another session (a long job) holding the appeal's row locked until it is closed."""
    params = {k: v for k, v in connections[DEFAULT_DB_ALIAS].get_connection_params().items() if k != "options"}
    holder = psycopg.connect(**params, autocommit=True)
    holder.execute("BEGIN")
    holder.execute("SELECT id FROM appeals_appeal WHERE id = %s FOR UPDATE", [appeal.pk])
    return holder


@pytest.mark.django_db(transaction=True)
def test_a_console_action_on_a_row_another_session_holds_is_a_503_after_the_lock_timeout():
    # given an operator, an appeal, and a long job holding the appeal's row
    operator = UserFactory(role=User.Role.OPERATOR)
    appeal = AppealFactory()
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    connection = connections[DEFAULT_DB_ALIAS]
    options = connection.settings_dict.setdefault("OPTIONS", {})
    saved = options.get("options")
    options["options"] = "-c lock_timeout=500"  # what the web process's connections carry
    connection.close()
    holder = _hold_row_lock(appeal)
    try:
        # when the operator takes the appeal
        started = time.monotonic()
        response = client.post(reverse("appeals:ticket-action", args=[appeal.pk, "assign-me"]),
                               HTTP_ACCEPT_LANGUAGE="en")
        waited = time.monotonic() - started
    finally:
        holder.close()
        if saved is None:
            options.pop("options")
        else:
            options["options"] = saved
        connection.close()
    # then a busy page in their language, soon, and nothing half-done
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    html = response.content.decode()
    assert BUSY in html and '<html lang="en">' in html
    assert waited < 5
    appeal.refresh_from_db()
    assert appeal.assigned_to_id is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.django_db(transaction=True)
def test_gunicorn_answers_a_request_blocked_by_a_held_row_within_the_web_lock_timeout(tmp_path):
    # given the deployment's gunicorn on the test database, a signed-in operator and an appeal
    operator = UserFactory(role=User.Role.OPERATOR)
    appeal = AppealFactory()
    browser = Client()
    browser.force_login(operator)
    session = browser.cookies["sessionid"].value
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "healthkit.settings",
           "DATABASE_URL": subprocess_database_url(),
           "DJANGO_DEBUG": "false", "DJANGO_SECURE_SSL_REDIRECT": "false", "DATABASE_WEB_LOCK_TIMEOUT": "1",
           "DATABASE_CONN_MAX_AGE": "0", "CELERY_TASK_ALWAYS_EAGER": "false", "HEALTHKIT_WEB_PROCESS": ""}
    env.pop("HEALTHKIT_WEB_PROCESS")
    server = subprocess.Popen(  # noqa: S603 - a fixed command
        [sys.executable, "-m", "gunicorn", "-c", "python:healthkit.gunicorn_conf", "--workers", "1",
         "--bind", f"127.0.0.1:{port}", "healthkit.wsgi:application"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csrf = secrets.token_hex(16)
    opener = urllib.request.build_opener(_NoRedirect)

    def assign_me() -> tuple[int, str]:
        request = urllib.request.Request(  # noqa: S310 - our own local server
            f"http://127.0.0.1:{port}" + reverse("appeals:ticket-action", args=[appeal.pk, "assign-me"]),
            data=urllib.parse.urlencode({"csrfmiddlewaretoken": csrf}).encode(), method="POST",
            headers={"Cookie": f"sessionid={session}; csrftoken={csrf}", "Accept-Language": "en"})
        try:
            with opener.open(request, timeout=15) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):  # noqa: S310
                    break
            except OSError:
                time.sleep(0.1)
        holder = _hold_row_lock(appeal)
        try:
            # when the operator takes the appeal while a long job holds its row
            started = time.monotonic()
            status, body = assign_me()
            waited = time.monotonic() - started
        finally:
            holder.close()
        # then a busy answer after about the lock timeout, not a request that never ends
        assert status == 503 and BUSY in body, status
        assert 1 <= waited < 8
        appeal.refresh_from_db()
        assert appeal.assigned_to_id is None
        # and once the job let go, the same action goes through
        assert assign_me()[0] == 302
        appeal.refresh_from_db()
        assert appeal.assigned_to_id == operator.pk
    finally:
        server.terminate()
        server.wait(10)
