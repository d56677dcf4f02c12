"""The doors of the staff console and the admin: login lockout (django-axes) and the TOTP second
factor (django-otp). Services here; views in healthkit/views_security.py."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from communities.models import User
from healthkit.errors import ApplicationError

# Roles that must pass a second factor; everybody else may enrol one and then must use it.
SECOND_FACTOR_ROLES = {User.Role.SUPERVISOR, User.Role.ADMINISTRATOR}


class AxesBackend(AxesStandaloneBackend):
    """Counts failed logins and refuses locked-out users/addresses on every login that comes
    through a request (console and admin login pages). Calls without a request (the test
    client's `login()`, a shell) have no client to count and pass to the next backend."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def client_ip(request: HttpRequest) -> str | None:
    """The address axes counts per IP: with N trusted proxies, the N-th X-Forwarded-For entry
    from the right (the same rule as the public pages' rate limits), else REMOTE_ADDR."""
    proxies = getattr(settings, "APPEALS_TRUSTED_PROXIES", 0)
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
    if proxies > 0 and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None  # unknown: counted per username only


def lockout_response(request: HttpRequest, credentials: Any = None, *args: Any, **kwargs: Any) -> HttpResponse:
    """What a locked-out login sees: a plain, translated page (429) naming the way out."""
    from healthkit.middleware import retry_after

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    response = render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
    return retry_after(response, settings.AXES_COOLOFF_TIME.total_seconds())  # at most the whole cool-off


# --- Lockouts (supervisors release them) -----------------------------------------------------

@dataclass(frozen=True)
class Lockout:
    kind: str  # "username" or "ip"
    value: str
    failures: int


def lockouts_current() -> list[Lockout]:
    """Usernames and addresses at or over the failure limit (within the cool-off, axes keeps
    the rows; they disappear when it expires or on release)."""
    limit = settings.AXES_FAILURE_LIMIT
    found: list[Lockout] = []
    for kind, field in (("username", "username"), ("ip", "ip_address")):
        rows = (AccessAttempt.objects.exclude(**{f"{field}__isnull": True}).values(field)
                .annotate(n=Sum("failures_since_start")).filter(n__gte=limit).order_by(field))
        found += [Lockout(kind=kind, value=row[field], failures=row["n"]) for row in rows]
    return found


def lockout_release(*, actor: User, kind: str, value: str) -> int:
    """Release one locked username or address; returns the number of attempt rows removed."""
    if actor.role not in SECOND_FACTOR_ROLES and not actor.is_superuser:
        raise ApplicationError(_("Only supervisors and administrators can release a lockout."))
    if kind not in ("username", "ip") or not value:
        raise ApplicationError(_("Choose a locked account or address to release."))
    return axes_reset(username=value) if kind == "username" else axes_reset(ip=value)


# --- Second factor -----------------------------------------------------------------------------

def second_factor_required(user: Any) -> bool:
    """Supervisors and administrators always; anybody else once they have enrolled a device."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser or user.role in SECOND_FACTOR_ROLES:
        return True
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def totp_device_pending(*, user: User) -> TOTPDevice:
    """The device being enrolled (unconfirmed): made once, shown until confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=_("Authenticator app"), confirmed=False)


def totp_key_base32(device: TOTPDevice) -> str:
    """The key as authenticator apps take it when typed (RFC 4648 base32, no padding)."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


@transaction.atomic
def totp_enrol_confirm(*, user: User, device: TOTPDevice, token: str) -> TOTPDevice:
    """The first right code confirms the device; the user's other pending devices go."""
    if device.user_id != user.pk or device.confirmed:
        raise ApplicationError(_("This enrolment has expired. Please start again."))
    if not device.verify_token((token or "").strip()):
        raise ApplicationError(_("That code is not right. Check the time on your phone and try again."))
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return device


def totp_verify(*, user: User, token: str) -> TOTPDevice:
    """The confirmed device that accepts `token` (django-otp throttles repeated failures)."""
    for device in TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk"):
        if device.verify_token((token or "").strip()):
            return device
    raise ApplicationError(_("That code is not right. Check the time on your phone and try again."))


# --- API tokens ----------------------------------------------------------------------------------
# Staff (everyone but integration clients) log in to the console with a second factor; a staff
# token must not be a way round it, nor a password that never expires. Integration clients (labs,
# feeds, ticket systems) keep long-lived tokens that an administrator rotates or revokes.

def staff_token(user: Any) -> bool:
    """A token of a person (console roles, venue managers, superusers), not of a system."""
    return bool(user.is_superuser or user.role != User.Role.INTEGRATION)


def api_token_refusal(token: Any) -> str | None:
    """Why `token` opens nothing now (a sentence to show), or None when it may be used. The one
    rule every token door applies (ApiTokenAuthentication, Open311's api_key):

    - the account is deactivated: refused at once, whatever the token;
    - a person's (staff) token: only while the person has a confirmed second factor, and for
      STAFF_API_TOKEN_HOURS after it was issued (an expired token is deleted);
    - an integration client's token: until an administrator rotates or revokes it."""
    user = token.user
    if not user.is_active:
        return _("This account is deactivated.")
    if not staff_token(user):
        return None
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return _("Staff API tokens need a confirmed second factor: enrol an authenticator app in the console, "
                 "then ask an administrator for a new token.")
    from django.utils import timezone

    if token.created < timezone.now() - dt.timedelta(hours=settings.STAFF_API_TOKEN_HOURS):
        type(token).objects.filter(pk=token.pk).delete()
        return _("This token has expired. Ask an administrator for a new one.")
    return None


def api_tokens_revoke(*, user: Any, staff_only: bool = True) -> int:
    """Delete the user's API token (a person's only, unless `staff_only` is False): on logout,
    password change and deactivation. Returns the number deleted."""
    from rest_framework.authtoken.models import Token

    if user is None or user.pk is None or (staff_only and not staff_token(user)):
        return 0
    return Token.objects.filter(user_id=user.pk).delete()[0]


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` for every API view (settings and each view's
    authentication_classes name this class, never DRF's own): DRF's look-up, then
    api_token_refusal."""

    def authenticate_credentials(self, key: str):
        user, token = super().authenticate_credentials(key)  # unknown key or inactive user: 401
        refusal = api_token_refusal(token)
        if refusal is not None:
            raise exceptions.AuthenticationFailed(refusal)
        return user, token


def on_logout(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """Logging out of the console or the admin ends the person's API token too."""
    api_tokens_revoke(user=user)
