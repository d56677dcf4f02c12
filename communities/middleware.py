"""Who is asking, for the access audit: the client address of the current request, kept in a
context variable so communities.services.access_log records it without every caller passing the
request (a new view cannot forget it)."""

import ipaddress
from collections.abc import Callable
from contextvars import ContextVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse

_client_ip: ContextVar[str | None] = ContextVar("audit_client_ip", default=None)


def current_client_ip() -> str | None:
    return _client_ip.get()


def request_client_ip(request: HttpRequest) -> str | None:
    """As appeals.ratelimit.client_ip: with N trusted proxies the N-th X-Forwarded-For entry from
    the right, else REMOTE_ADDR. None when it is not an IP address."""
    proxies = getattr(settings, "APPEALS_TRUSTED_PROXIES", 0)
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
    value = forwarded[-proxies] if proxies > 0 and len(forwarded) >= proxies else request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _client_ip.set(request_client_ip(request))
        try:
            return self.get_response(request)
        finally:
            _client_ip.reset(token)
