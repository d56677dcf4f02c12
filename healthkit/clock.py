"""The product's one clock: real time, or a controlled instant (the simulator, tests, replays).

Every read of "now" or "today" in the product goes through here (tests/test_clock_boundary.py
walks the product's modules and fails on any other read of the wall clock), so a replay or a
test that sets the clock moves every deadline, SLA, link expiry and "today" at once. "Today" is
the city's date (settings.TIME_ZONE, Asia/Shanghai: a new day starts at 16:00 UTC), never the
server's (UTC) date.

This module imports nothing of the product, so every app may use it (communities included).
"""

import contextlib
import datetime as dt
from collections.abc import Iterator
from contextvars import ContextVar

from django.db import models
from django.utils import timezone

_frozen: ContextVar[dt.datetime | None] = ContextVar("healthkit_clock", default=None)


def now() -> dt.datetime:
    """The current instant (aware, UTC unless a frozen instant says otherwise)."""
    return _frozen.get() or timezone.now()


def localtime(instant: dt.datetime | None = None) -> dt.datetime:
    """`instant` (default: now) in city time (settings.TIME_ZONE)."""
    return timezone.localtime(instant if instant is not None else now())


def today() -> dt.date:
    """The city's date now: in Beijing 2022-07-16 starts at 2022-07-15 16:00 UTC."""
    return localtime().date()


def timestamp() -> float:
    """Now as seconds since the epoch (for signatures and short-lived tokens)."""
    return now().timestamp()


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


class DateTimeField(models.DateTimeField):
    """models.DateTimeField whose auto_now / auto_now_add read this clock (Django's read the wall
    clock): a row written under a set clock (a replay, a test) is stamped with that clock's time.
    Use `default=clock.now` for a default the caller may override.

    It is stored and migrated as Django's own field (deconstruct names models.DateTimeField and
    timezone.now for the default): the column and the migrations are the same, only the Python
    read of "now" differs."""

    def pre_save(self, model_instance, add):
        if self.auto_now or (self.auto_now_add and add):
            value = now()
            setattr(model_instance, self.attname, value)
            return value
        return super().pre_save(model_instance, add)

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        if kwargs.get("default") is now:
            kwargs["default"] = timezone.now
        return name, "django.db.models.DateTimeField", args, kwargs


def local_text(instant: dt.datetime | None, fmt: str) -> str:
    """`instant` written in city time (strftime `fmt`), "" for None: an aware instant read from the
    database is in UTC, and formatted as it is it shows the UTC date and hour."""
    return timezone.localtime(instant).strftime(fmt) if instant is not None else ""
