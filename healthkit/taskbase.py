"""The base class of every Celery task of the project (set as the app's `task_cls`).

A lost database connection (a restart, a failover, a session killed by an administrator), a
lock timeout or a TransientError is worth another try a little later; every task is safe to run
twice (it re-reads its rows), so the retry is the whole task again. Retries back off
exponentially with jitter up to a minute, well under the broker's visibility timeout, and stop
after five: a beat job re-derives whatever is still due from the database (docs/operations.md).
A task may narrow or widen this with its own decorator options. psycopg's own errors count too:
work that talks to the driver directly (the exposure job's and the ingest's second connection)
meets a killed session as psycopg.OperationalError, not Django's wrapper of it.
"""

import psycopg
from celery import Task
from django.db import InterfaceError, OperationalError

from healthkit.errors import TransientError


class HealthkitTask(Task):
    autoretry_for = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError,
                     TransientError)
    retry_backoff = True
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 5
    acks_late = True
