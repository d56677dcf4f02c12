"""The one error type of the domain: services raise it with a message a person can read."""

import math
from typing import Any

# The machine-readable `code` of an error answer by its status, where the answer names no other
# (the REST API's error shape: error_body below).
STATUS_CODES = {400: "malformed", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
                405: "method_not_allowed", 406: "not_acceptable", 411: "length_required", 413: "too_large",
                415: "unsupported_media_type", 422: "idempotency_key_reused", 429: "throttled",
                500: "server_error", 503: "unavailable"}


def error_body(detail: str, code: str, *, errors: dict | None = None, extra: dict | None = None) -> dict[str, Any]:
    """The one shape of every error answer of the REST API (4xx and 5xx, from a view, a
    middleware or Django itself; documented as `Error` in the OpenAPI schema): `detail`, a
    sentence in the reader's language; `code`, what a program branches on; `errors`, the field
    errors of the request (`{"field": ["message", ...]}`, nested like the body; `{}` when none);
    `extra`, machine-readable details (`{}` when none)."""
    return {"detail": str(detail), "code": code, "errors": errors or {}, "extra": extra or {}}


class ApplicationError(Exception):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class RetryLater(ApplicationError):
    """A limit was reached (a flood limit, a daily cap): try again in `retry_after` seconds. Every
    interface answers it with 429 and a `Retry-After` header saying so."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None, *, retry_after: int) -> None:
        super().__init__(message, extra)
        self.retry_after = max(1, math.ceil(retry_after))  # never sooner than the limit lifts


class IllegalTransition(ApplicationError):
    """A state change the transition table does not allow."""


class TransientError(Exception):
    """A failure worth retrying (network, lock timeout): Celery tasks autoretry on it."""
