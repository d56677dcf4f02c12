"""Structured logs: one event per line with the request id, the Celery task id and the user id.

`ContextFilter` (on the handler) stamps every record with `request_id`, `task_id` and `user_id`
from context variables set by `RequestContextMiddleware` (a sane `X-Request-ID` from the proxy is
kept, else a new one; it is echoed in the response) and from Celery's current task.
`JsonFormatter` writes the record as one JSON object per line. It formats `record.getMessage()`,
so any other filter on the handler or logger (e.g. token masking) that rewrites `msg`/`args`
applies to the JSON too. Never log personal data: ids only (residents, messages, rows).
"""

import contextvars
import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject, empty

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
request_var: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("request", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _task_id() -> str:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover - celery is a dependency
        return "-"
    task = current_task
    request_id = getattr(getattr(task, "request", None), "id", None) if task else None
    return request_id or "-"


def _user_id() -> str:
    """The request's user once something authenticated it (a session page, or DRF's token
    authentication, which sets it on the request); never triggers a look-up itself."""
    request = request_var.get()
    user = request.__dict__.get("user") if request is not None else None
    if isinstance(user, SimpleLazyObject):
        user = None if user._wrapped is empty else user._wrapped
    return str(user.pk) if user is not None and getattr(user, "is_authenticated", False) else "-"


class ContextFilter(logging.Filter):
    """Adds request_id, task_id and user_id to every record (never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "user_id"):
            record.user_id = _user_id()
        if not hasattr(record, "task_id"):
            record.task_id = _task_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, task_id, user_id and,
    for an exception, its type and traceback (frames only hold what the message layer logged)."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "task_id": getattr(record, "task_id", "-"),
            "user_id": getattr(record, "user_id", "-"),
        }
        if record.exc_info:
            event["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else ""
            # a filter may have rendered and masked it already (exc_text): use that text
            event["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False, default=str)


class RequestContextMiddleware:
    """Sets the request id (from a sane X-Request-ID, else new) and the request (for the user id,
    read once authenticated) for the logs of this request, and returns the id in the
    X-Request-ID response header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        if settings.SESSION_COOKIE_NAME in request.COOKIES and hasattr(request, "user"):
            request.user.is_authenticated  # noqa: B018 - resolve a session user now, not inside a log call
        tokens = (request_id_var.set(request_id), request_var.set(request))
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(tokens[0])
            request_var.reset(tokens[1])
        response["X-Request-ID"] = request_id
        return response
