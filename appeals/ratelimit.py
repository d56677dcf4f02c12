"""Fixed-window flood limits on the public pages, kept in Django's cache.

Keys carry only keyed hashes (never a phone or ID in clear). A refused request loses nothing:
the caller shows a polite message and whatever was already stored stays stored.
"""

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _

from communities import pii
from healthkit.errors import RetryLater


class RateLimited(RetryLater):
    """Too many attempts in a window; the message says to try again later."""


def _parse(rule: str) -> tuple[int, int]:
    count, seconds = rule.split("/")
    return int(count), int(seconds)


def client_ip(request) -> str:
    """The client address for per-IP limits. With N trusted proxies, the N-th entry from the
    right of X-Forwarded-For (the one our outermost proxy saw); anything further left is the
    client's own claim and could be forged to dodge the limit."""
    proxies = settings.APPEALS_TRUSTED_PROXIES
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies > 0 and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def window_count(key: str, seconds: int) -> int:
    """Count one more attempt under `key` in its fixed window of `seconds`; the count so far. With
    the cache unreachable (healthkit/cache.py) nothing is counted: 1, so limits let requests through."""
    cache.add(key, 0, timeout=seconds)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr, or the cache unreachable
        cache.set(key, 1, timeout=seconds)
        return 1


def hit(limit_name: str, subject: str) -> None:
    """Count one attempt for `subject` under the named limit; raise RateLimited when over it."""
    count, seconds = _parse(settings.APPEALS_RATE_LIMITS[limit_name])
    if window_count(f"appeals:rl:{limit_name}:{pii.keyed_hash('rl:' + subject)[:32]}", seconds) > count:
        minutes = max(seconds // 60, 1)
        raise RateLimited(
            _("There have been too many attempts. Nothing you already sent is lost; please try again "
              "in about %(minutes)d minutes.") % {"minutes": minutes},
            extra={"limit": limit_name}, retry_after=seconds,  # at most one window away
        )
