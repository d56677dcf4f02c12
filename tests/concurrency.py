"""Helpers for tests of staff acting at the same moment: real threads, each on its own database
connection and its own signed-in browser session, posting the form a page rendered."""

import os
import re
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import psycopg
from django.contrib.messages import get_messages
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test import Client

SEEN = re.compile(r'name="seen" value="([^"]*)"')


def signed_in(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def page_seen(client: Client, url: str) -> dict[str, str]:
    """What a browser posts back from `url`'s forms besides the fields: the hidden version, if
    the page renders one (an empty dict otherwise, as the pages did before)."""
    found = SEEN.findall(client.get(url).content.decode())
    assert len(set(found)) <= 1, "every form of one page carries the same version"
    return {"seen": found[0]} if found else {}


def post_messages(client: Client, url: str, data: dict) -> list[str]:
    """POST as the form does; the messages the next page would show."""
    response = client.post(url, data)
    assert response.status_code in (200, 302, 400), response.status_code
    return [str(m) for m in get_messages(response.wsgi_request)]


def at_once(*calls: Callable[[], object]) -> list[object]:
    """Run the calls in threads released together; each closes its connection when done."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - the test asserts on what each call met
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def terminate_backend(pid: int) -> None:
    """End a database session as an administrator (or a restart) does, from a connection of
    its own, and wait until it is gone."""
    params = {k: v for k, v in connections[DEFAULT_DB_ALIAS].get_connection_params().items() if k != "options"}
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):
            if not admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
                return
            time.sleep(0.05)


def subprocess_database_url() -> str:
    """DATABASE_URL for a subprocess (gunicorn, a worker) that must use this test run's database:
    the run's own URL (host, port, socket folder, password and options as given, the embedded
    server's included) naming the test database instead."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connections[DEFAULT_DB_ALIAS].settings_dict["NAME"]))
