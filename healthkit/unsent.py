"""What a person typed into a form that arrived after their session ended, kept for the page they
will be back on: a note, a reason, a description half an hour long is not lost to a timeout.

The form's fields (never passwords, files or the form's own tokens) are kept encrypted in the new
session, with the page the person came from and the form's address; the first time that page (or
the form's own page) is shown again, it gets them once (`unsent_take`), shows them to copy and
site.js puts them back into the same form. On a shared desk the next person to log in is not given
them: every signed-in page leaves a signed cookie naming its user (`DeskOwnerMiddleware`), the
kept form records it, and a different user logging in gets nothing (the form is dropped).
"""

import json
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme

from communities import pii
from healthkit import clock
from healthkit.concurrency import ONCE_FIELD, SEEN_FIELD

SESSION_KEY = "unsent_form"
KEPT_SECONDS = 900  # long enough to log in again; short on a shared desk
MAX_FIELDS = 40
MAX_CHARS = 5000
# The form's machinery, not what the person typed; a password is never kept.
OWNER_COOKIE = "hk_desk_user"
OWNER_SALT = "healthkit.unsent.owner"
OWNER_MAX_AGE = 7 * 24 * 3600
NOT_KEPT = {"csrfmiddlewaretoken", ONCE_FIELD, SEEN_FIELD, "from", "next", "action"}


def form_page(request: HttpRequest) -> str | None:
    """The page (path and query) a POSTed form was on, from the Referer when it is this site;
    else None. A form's own address often answers POST only."""
    back = request.headers.get("Referer", "")
    if not back or not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                       require_https=request.is_secure()):
        return None
    parts = urlsplit(back)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def unsent_keep(request: HttpRequest, *, back: str) -> None:
    """Keep the POSTed form's typed values for `back` (a path on this site, query allowed)."""
    fields = [(name, value[:MAX_CHARS]) for name, values in request.POST.lists()
              if name not in NOT_KEPT and "password" not in name.lower()
              for value in values if value.strip()][:MAX_FIELDS]
    if not fields:
        return
    owner = request.get_signed_cookie(OWNER_COOKIE, default=None, salt=OWNER_SALT, max_age=OWNER_MAX_AGE)
    kept = {"back": urlsplit(back).path, "action": request.path, "fields": fields, "at": clock.timestamp(),
            "owner": owner}
    request.session[SESSION_KEY] = pii.encrypt(json.dumps(kept))


def unsent_take(request: HttpRequest) -> dict | None:
    """The kept form for this page ({"action", "fields"}), once; None elsewhere and once too old."""
    session = getattr(request, "session", None)
    if session is None or SESSION_KEY not in session:
        return None
    try:
        kept = json.loads(pii.decrypt(session[SESSION_KEY]))
    except pii.UndecryptableError:  # the key it was kept under is gone: nothing to give back
        session.pop(SESSION_KEY, None)
        return None
    if clock.timestamp() - kept.get("at", 0) > KEPT_SECONDS:
        session.pop(SESSION_KEY, None)
        return None
    user = getattr(request, "user", None)
    if kept.get("owner") and user is not None and user.is_authenticated and str(user.pk) != kept["owner"]:
        session.pop(SESSION_KEY, None)  # typed by the person before at this desk: never shown to another
        return None
    if request.method != "GET" or request.path not in (kept["back"], kept["action"]):
        return None
    session.pop(SESSION_KEY, None)
    return {"action": kept["action"], "fields": kept["fields"]}


class DeskOwnerMiddleware:
    """Leave on every signed-in answer a signed cookie naming its user, so that a form kept after
    that person's session ended is given back to them only (unsent_take)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            current = request.get_signed_cookie(OWNER_COOKIE, default=None, salt=OWNER_SALT, max_age=OWNER_MAX_AGE)
            if current != str(user.pk):
                response.set_signed_cookie(OWNER_COOKIE, str(user.pk), salt=OWNER_SALT, max_age=OWNER_MAX_AGE,
                                           httponly=True, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)
        return response


def action_refused(request: HttpRequest, *, message: str, back: str) -> HttpResponse:
    """A console action refused, by its form or by the service: the reason said once, as a
    message in the reader's language, on the page the action was sent from (`back`, this site),
    reached by a redirect so that reloading it sends nothing again (Post/Redirect/Get); what was
    typed is kept for that page (unsent_keep), which puts it back into the same form."""
    messages.error(request, message)
    unsent_keep(request, back=back)
    return redirect(back)
