"""The one error type of the domain: services raise it with a message a person can read."""

import math
from typing import Any


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
