"""Optimistic concurrency for staff forms: "this changed since you opened it".

A staff page renders, in every action form, the version of the object it showed (the hidden
field `seen`, the row's `updated_at` to the microsecond). The service that acts locks the row and
calls `check_seen` before changing anything: if the row changed in between (another person
acted, the resident answered, the same form was sent twice, a stale tab or the back button
resubmitted), nothing is done and the person gets a message saying so, instead of a second SMS,
a duplicate call log or someone else's decision silently overwritten.

Every change of a checked object must therefore move its `updated_at`: `save()` does
(auto_now); a change that only adds rows beside it (an event, a call, a link) calls `touch`.
Callers without a page (API clients, tasks, sweeps) pass no `seen` and are not checked.

A form that creates something has no version to carry: it carries a one-time token instead
(`{% once_field %}`, or a token the flow already has, like the filing draft's key), and the view
runs the creation inside `once(scope, token)`, which lets one submission of that token through
(the shared cache's atomic add, as the rate limits use) and refuses the others, so a double
click on "create" files one appeal, logs one call and sends one SMS. With the cache unreachable
the guard is open (nothing is refused), as the rate limits are.
"""

import contextlib
import datetime as dt
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

from django.core.cache import cache
from django.db import models
from django.utils.translation import gettext as _

from healthkit import clock
from healthkit.errors import ApplicationError

SEEN_FIELD = "seen"
_MAX_SEEN = 40
ONCE_FIELD = "once"
ONCE_SECONDS = 24 * 3600  # longer than anyone keeps a form open before sending it


class ChangedSinceSeen(ApplicationError):
    """The object changed after the page that posted the form was shown: nothing was done."""


def version_of(obj: models.Model) -> str:
    """The version a page carries for `obj`: its `updated_at` in UTC to the microsecond."""
    return obj.updated_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%f")


def seen_from(data: Mapping[str, Any]) -> str | None:
    """The version a posted form carries, or None when it carries none (not checked)."""
    value = str(data.get(SEEN_FIELD) or "").strip()
    return value[:_MAX_SEEN] or None


def check_seen(obj: models.Model, seen: str | None) -> None:
    """Refuse to act on `obj` (locked by the caller) if it changed since the page showed `seen`.

    Raises ChangedSinceSeen (an ApplicationError: the views show its message) with nothing written."""
    if seen is None or seen == version_of(obj):
        return
    raise ChangedSinceSeen(
        _("This record changed after you opened the page (someone else acted on it, new information "
          "arrived, or the form was sent twice). Nothing was done: please look at it again and act if "
          "still needed."),
        extra={"changed_since_seen": True})


class AlreadySent(ApplicationError):
    """The same creation form (one-time token) was sent before: this submission did nothing."""


def once_token() -> str:
    return secrets.token_urlsafe(16)


def once_from(data: Mapping[str, Any]) -> str | None:
    """The one-time token a posted form carries, or None (a form without one is not checked)."""
    value = str(data.get(ONCE_FIELD) or "").strip()
    return value[:64] or None


@contextlib.contextmanager
def once(scope: str, token: str | None) -> Iterator[None]:
    """Run the block for the first submission of `token` only; a later or simultaneous one raises
    AlreadySent before doing anything. If the block fails (a refusal, a crash), nothing was done
    and the token is given back, so the same form can be corrected and sent again."""
    if token is None:
        yield
        return
    key = f"once:{scope}:{token}"
    # add() is False for a token already there, and for a cache that cannot be reached
    # (healthkit/cache.py): only the first is refused; without the cache the guard is open, as
    # the rate limits are, and a double click may file twice rather than nothing be filed.
    if not cache.add(key, 1, timeout=ONCE_SECONDS) and cache.get(key) is not None:
        raise AlreadySent(_("This form was already sent; this second submission did nothing. Check the result "
                            "of the first (the queue, or the SMS with your reference) before sending it again."),
                          extra={"already_sent": True})
    try:
        yield
    except BaseException:
        cache.delete(key)
        raise


def touch(obj: models.Model) -> None:
    """Move `obj`'s version for a change written beside it (an event, a call, a link): a page
    opened before it is then stale. The caller holds the row's lock."""
    obj.updated_at = clock.now()
    type(obj).objects.filter(pk=obj.pk).update(updated_at=obj.updated_at)
