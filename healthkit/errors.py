"""The one error type of the domain: services raise it with a message a person can read."""

from typing import Any


class ApplicationError(Exception):
    def __init__(self, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class IllegalTransition(ApplicationError):
    """A state change the transition table does not allow."""


class TransientError(Exception):
    """A failure worth retrying (network, lock timeout): Celery tasks autoretry on it."""
