"""Response headers set at one boundary for every page."""

import math
from collections.abc import Callable

from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.urls import reverse
from django.utils.translation import gettext as _

from healthkit.views_errors import RETRY_AFTER_SECONDS

# A 429 or 503 whose view did not say when to come back: a minute for a limit, the database
# refusal's few seconds for an outage.
DEFAULT_RETRY_AFTER = {429: 60, 503: RETRY_AFTER_SECONDS}


def retry_after(response: HttpResponse, seconds: float) -> HttpResponse:
    """Say on `response` in how many whole seconds (at least 1) to try again; returns it."""
    response["Retry-After"] = str(max(1, math.ceil(seconds)))
    return response


class RetryAfterMiddleware:
    """Every 429 (a limit) and 503 (unavailable) says when to try again: `Retry-After` in seconds,
    whichever view, middleware or error handler answered, HTML or JSON. Views that know the wait
    (a limit's window, a lockout's cool-off) set it with `retry_after`; this fills in the rest.
    Outermost, so it also sees the answers other middleware and Django's error handling make."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        default = DEFAULT_RETRY_AFTER.get(response.status_code)
        if default is not None and not response.has_header("Retry-After"):
            retry_after(response, default)
        return response


# Public pages whose answers can carry a resident's data without a login: filing steps, the
# status page, the evidence and clearance links, Open311 requests.
PERSONAL_PUBLIC_PREFIXES = ("/appeals/", "/clearance/", "/open311/", "/accounts/")


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every answer that may hold personal data: anything served to a
    signed-in user (console, admin, API with a session or token) and the public pages above. A
    browser's back button, a shared computer's disk cache or a proxy keep none of it. Static files
    and the public landing page stay cacheable."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(self.static_prefix):
            return response
        user = getattr(request, "user", None)  # DRF writes the token's user back onto the request
        if (user is not None and user.is_authenticated) or request.path.startswith(PERSONAL_PUBLIC_PREFIXES) \
                or request.path.startswith(("/console/", "/admin/", "/api/")):
            if "no-store" not in response.get("Cache-Control", ""):
                response["Cache-Control"] = "no-store"  # replaces any max-age a view may have set
            response["Pragma"] = "no-cache"
        return response


class SecondFactorMiddleware:
    """After the password, the second factor: a signed-in user who must use one (supervisors,
    administrators, anyone who enrolled) reaches nothing but the login/enrol/verify pages, the
    language switch and static files until the session is verified. Sits after django-otp's
    OTPMiddleware, which gives `request.user.is_verified()`."""

    OPEN_PREFIXES = ("/accounts/", "/i18n/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from healthkit.auth import second_factor_required

        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated and not request.path.startswith(self.OPEN_PREFIXES)
                and not request.path.startswith(self.static_prefix)
                and not user.is_verified() and second_factor_required(user)):
            if request.path.startswith("/api/"):
                from healthkit.views_errors import api_error

                return api_error(_("Verify your second factor first: log in again in the console."), 403,
                                 "second_factor_required")
            from django.contrib.auth.views import redirect_to_login

            return redirect_to_login(request.get_full_path(), reverse("otp-verify"))
        return self.get_response(request)


class PersonalDataAddressMiddleware:
    """No address carries an ID number or a phone number: browser history, shared screens,
    bookmarks, proxies and access logs keep addresses. A query string holding one (typed into a
    GET filter box such as the queue's reference, passed on in a link's `from=`, a `next=`, an
    API query parameter) is never answered: a page leads to the same address without those
    parameters, saying where such a search belongs (the POST person search); the API, Open311
    and any other method answer 400. The value is never echoed. Personal-data look-ups are
    POSTs (healthkit/static/healthkit/site.js stops a GET form with one before it is sent)."""

    API_PREFIXES = ("/api/", "/open311/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from healthkit.logfilters import holds_personal_data

        query = request.GET
        found = [name for name in query
                 if holds_personal_data(name) or any(holds_personal_data(v) for v in query.getlist(name))]
        if not found:
            return self.get_response(request)
        if request.path.startswith(self.API_PREFIXES):
            from healthkit.views_errors import api_error

            return api_error(_("ID numbers and phone numbers are never sent in an address (logs keep it): send "
                               "them in a POST body, e.g. POST /api/v1/appeals/search/."), 400,
                             "personal_data_in_address")
        message = _("ID numbers and phone numbers are never put in an address (browser history and logs keep "
                    "it), so that filter was left out. Look a person up with “Find by exact ID number or phone” "
                    "on the queue.")
        if request.method not in ("GET", "HEAD"):
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        kept = query.copy()
        for name in found:
            del kept[name]
        from django.contrib import messages

        messages.warning(request, message)
        return HttpResponseRedirect(request.path + (f"?{kept.urlencode()}" if kept else ""))


class UndecryptableDraftMiddleware:
    """A resident's draft or link sealed under a personal-data key that has since been removed
    (see rotate_pii_keys) is treated as expired: the public pages start again with a message,
    never a 500. Staff pages still fail loudly: there it is a configuration error."""

    PUBLIC_PREFIXES = ("/appeals/", "/clearance/r/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from communities.pii import UndecryptableError

        if not isinstance(exception, UndecryptableError) or not request.path.startswith(self.PUBLIC_PREFIXES):
            return None
        from django.contrib import messages
        from django.shortcuts import redirect

        if not (getattr(request, "user", None) and request.user.is_authenticated):
            request.session.flush()
        messages.error(request, _("Your session has expired. Please start again."))
        return redirect("appeals:start")
