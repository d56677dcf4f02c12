"""The engine's clock: real time, or a controlled instant (the simulator, tests)."""

import contextlib
import datetime as dt
from collections.abc import Iterator
from contextvars import ContextVar

from django.utils import timezone

_frozen: ContextVar[dt.datetime | None] = ContextVar("healthkit_clock", default=None)


def now() -> dt.datetime:
    return _frozen.get() or timezone.now()


@contextlib.contextmanager
def frozen_at(instant: dt.datetime) -> Iterator[None]:
    token = _frozen.set(instant)
    try:
        yield
    finally:
        _frozen.reset(token)


def set_now(instant: dt.datetime | None) -> None:
    """Move a frozen clock (the simulator advances it event by event)."""
    _frozen.set(instant)
