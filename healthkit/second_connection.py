"""A second connection to the database per thread, for work that runs on the server at the
same time as the thread's own connection (Django's): result ingest looks residents up on it
while the COPY runs on the first (healthkit.ingest), the exposure job raises half of a large
first run on it while the job's own connection raises the other half (venues.exposure).

Opened once and kept (opening one costs about as much as a tenth of an ingest batch); checked
by one round trip before each use and reopened if the server ended it; one inherited through a
fork is left to the parent. It is in autocommit mode: a caller that needs a transaction on it
sends BEGIN itself and must leave it idle (COMMIT or ROLLBACK) or close it; one found inside a
transaction is closed and another opened. Queries are sent with libpq's asynchronous send
(`send_in_background`), so the server works while the thread goes on."""

import os
import threading
from collections.abc import Callable

import psycopg
from django.db import connection
from psycopg import errors as psycopg_errors
from psycopg import pq

_held = threading.local()


def second_connection() -> psycopg.Connection:
    """This thread's second connection to the database Django's connection points at. Dropped
    and reopened when that database changed (tests) or the session broke; raises
    psycopg.OperationalError if no connection can be opened."""
    params = connection.get_connection_params()
    target = (params.get("dbname"), params.get("host"), params.get("port"), params.get("user"))
    held = getattr(_held, "connection", None)
    if held is not None and _held.pid != os.getpid():
        # inherited through a fork: the parent's session; never used or closed here (closing
        # would end it for the parent)
        del _held.connection
        held = None
    if held is not None and (held.closed or held.broken or _held.target != target
                             or held.pgconn.transaction_status != pq.TransactionStatus.IDLE):
        close_second_connection()
        held = None
    if held is not None:
        try:  # an idle session the server (a restart, an idle timeout) ended: open another
            held.execute("SELECT 1")
        except psycopg.OperationalError:
            close_second_connection()
            held = None
    if held is None:
        held = psycopg.connect(**params, autocommit=True)
        _held.connection, _held.target, _held.pid = held, target, os.getpid()
    return held


def close_second_connection() -> None:
    """Close this thread's second connection, if open (after a failure on it; before a test
    database is dropped)."""
    held = _held.__dict__.pop("connection", None)
    if held is not None:
        held.close()


def query_in_background(sql: str, params: list[str], pgconn: "pq.abc.PGconn") -> Callable[
        [], list[tuple[str | None, ...]]]:
    """Send a query with text parameters ($1...) on `pgconn` and return at once; the returned
    function waits for its rows (as text). Nothing else may use the connection in between."""
    pgconn.send_query_params(sql.encode(), [p.encode() for p in params])
    return lambda: _rows(pgconn)


def send_in_background(query: bytes, pgconn: "pq.abc.PGconn") -> Callable[[], list[tuple[str | None, ...]]]:
    """As query_in_background, for a query whose values are already in its text (one statement)."""
    pgconn.send_query(query)
    return lambda: _rows(pgconn)


def _rows(pgconn: "pq.abc.PGconn") -> list[tuple[str | None, ...]]:
    """Wait for the results of the query sent; its rows as text, or the server's error raised."""
    found: list[tuple[str | None, ...]] = []
    error = None
    while (res := pgconn.get_result()) is not None:
        if res.status == pq.ExecStatus.TUPLES_OK:
            found.extend(
                tuple(None if (v := res.get_value(r, c)) is None else v.decode() for c in range(res.nfields))
                for r in range(res.ntuples)
            )
        elif res.status != pq.ExecStatus.COMMAND_OK and error is None:
            error = psycopg_errors.error_from_result(res, encoding="utf-8")
    if error is not None:
        raise error
    if pgconn.status == pq.ConnStatus.BAD:  # the session ended (terminated, restart): no answer came
        raise psycopg.OperationalError("the connection to the server was lost")
    return found
