"""Django's own error answers (no view matched, a view crashed, a request Django refused before
any view) for the REST API: the error JSON every API client is promised (healthkit.errors.error_body,
docs/engine.md), not an HTML page; the details are DRF's own (translated) words. Everything
outside /api/ keeps Django's pages.

Two refusals get their own status on every path (API and console alike), because a client can act
on them: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 saying the limit (Django raises
RequestDataTooBig wherever the body is read: a form, DRF's parsers), and a database that cannot be
reached, or that did not answer within the web process's bounded wait (a lock held by another
session, a statement over its timeout: DATABASE_WEB_* settings), is a 503 with Retry-After
(docs/operations.md), not a 500 nor a page that never ends."""

import errno
import logging
import sys
from collections.abc import Callable

import psycopg
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.template.defaultfilters import filesizeformat
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import defaults

from healthkit.errors import STATUS_CODES, error_body

API_PREFIX = "/api/"
RETRY_AFTER_SECONDS = 5
logger = logging.getLogger(__name__)

# SQLSTATEs of a server that is not there for us (connection exceptions, shutting down, starting
# up, out of connection slots). Other OperationalErrors (a serialization failure or deadlock the
# engine retries) are the code's business: they stay 500s.
_UNAVAILABLE_STATES = ("57P01", "57P02", "57P03", "53300")
# The bounded wait ran out: lock_timeout (lock_not_available) and statement_timeout (query_canceled).
_BUSY_STATES = ("55P03", "57014")


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def api_error(detail: str, status: int, code: str | None = None, *, extra: dict | None = None) -> JsonResponse:
    """An error answer of the REST API in its one shape (healthkit.errors.error_body)."""
    return JsonResponse(error_body(detail, code or STATUS_CODES.get(status, "error"), extra=extra), status=status,
                        json_dumps_params={"ensure_ascii": False})


def body_too_large_message() -> str:
    return _("The request body is too large (at most %(limit)s).") % {
        "limit": filesizeformat(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)}


def _driver_error(exception: BaseException | None) -> BaseException | None:
    """psycopg's error: the cause behind Django's wrapper, or the driver's own error raised
    directly (the ingest's COPY and its second connection talk to psycopg without the wrapper)."""
    if isinstance(exception, OperationalError | InterfaceError):
        return exception.__cause__
    if isinstance(exception, psycopg.Error):
        return exception
    return None


def _sqlstate(exception: BaseException | None) -> str | None:
    return getattr(_driver_error(exception), "sqlstate", None)


def database_unavailable(exception: BaseException | None) -> bool:
    """True when the database could not be reached or dropped the connection: no connection
    (InterfaceError), a failure the driver raised without a server answer (refused, closed,
    reset), or a server SQLSTATE saying it is unavailable (class 08, shutdown, too many clients);
    through Django's wrapper or raised by psycopg itself."""
    if isinstance(exception, InterfaceError | psycopg.InterfaceError):
        return True
    if not isinstance(exception, OperationalError | psycopg.OperationalError):
        return False
    state = _sqlstate(exception)
    return state is None or state.startswith("08") or state in _UNAVAILABLE_STATES


def database_busy(exception: BaseException | None) -> bool:
    """True when the database answered that the request's bounded wait ran out: a lock another
    session holds (a long job on a hot row) or a statement over the web timeout."""
    return isinstance(exception, OperationalError | psycopg.OperationalError) and _sqlstate(exception) in _BUSY_STATES


# A disk that will not keep a file: full, over quota, read-only, permission denied, failing.
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO})


def storage_refused(exception: BaseException | None) -> bool:
    """True for a file system refusing to keep a file (an upload spooled to the temporary folder,
    an export's temporary workbook): the server's condition, not the request's fault."""
    return isinstance(exception, OSError) and exception.errno in _STORAGE_ERRNOS


def database_refused(exception: BaseException | None) -> bool:
    """Unavailable or busy: the answer is a 503 with Retry-After (service_unavailable)."""
    return database_unavailable(exception) or database_busy(exception)


def service_unavailable(request: HttpRequest, exception: BaseException,
                        render: Callable[[str], HttpResponse] | None = None) -> HttpResponse:
    """503 with Retry-After, in the reader's language, touching no database. The log line names
    the failure's class and SQLSTATE (or errno) only: never the driver's message (it may quote a
    query, a host or a file name) nor the path (it may hold a reference). `render` answers in a protocol's own error
    shape (Open311's error list)."""
    busy = database_busy(exception)
    if storage_refused(exception):
        logger.error("storage refused a file: %s (errno %s), answered 503", type(exception).__name__,
                     exception.errno)
        message = _("Files cannot be stored on the server at the moment, so nothing was saved. "
                    "Please try again in a few minutes.")
    elif busy:
        logger.error("database busy: %s (sqlstate %s), answered 503", type(exception).__name__,
                     _sqlstate(exception) or "-")
        message = _("The records you asked for are busy (another task is changing them), so this could "
                    "not be done in time. Please try again in a moment.")
    else:
        logger.error("database unavailable: %s (sqlstate %s), answered 503", type(exception).__name__,
                     _sqlstate(exception) or "-")
        message = _("The service is briefly unavailable. Please try again in a few seconds.")
    if render is not None:
        response = render(message)
    elif is_api(request):
        response = api_error(message, 503)
    else:
        response = HttpResponse(loader.get_template("error_standalone.html").render(
            {"title": _("Service unavailable (503)"), "message": message}), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response._has_been_logged = True  # Django's own line would carry the traceback and its message
    return response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        message = body_too_large_message()
        if is_api(request):
            return api_error(message, 413)
        return HttpResponse(loader.get_template("413.html").render({"message": message}), status=413)
    if is_api(request):
        return api_error(_("Malformed request."), 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return api_error(_("You do not have permission to perform this action."), 403)
    return defaults.permission_denied(request, exception)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a form sent from a page that has gone stale (open for hours, the session
    ended or was renewed in another tab, cookies blocked). Django's own page is English-only,
    technical and outside the site; this one says, in the reader's language, that nothing was
    saved and leads back to the page the form came from (same site only). `reason` is Django's
    developer text: never shown."""
    if is_api(request):
        return api_error(_("The form has expired. Reload the page and send it again."), 403, "csrf_failed")
    back = request.headers.get("Referer", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        back = ""
    return render(request, "403_csrf.html", {"back": back}, status=403)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return api_error(_("Not found."), 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this inside its `except`: the exception is the one being handled.
    exception = sys.exc_info()[1]
    if database_refused(exception) or storage_refused(exception):
        return service_unavailable(request, exception)
    if is_api(request):
        return api_error(_("A server error occurred."), 500)
    return defaults.server_error(request)
