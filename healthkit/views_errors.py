"""Django's own error answers (no view matched, a view crashed, a request Django refused before
any view) for the REST API: the `{"detail"}` JSON every API client is promised (docs/engine.md),
not an HTML page; the details are DRF's own (translated) words. Everything outside /api/ keeps
Django's pages."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults

API_PREFIX = "/api/"


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def api_error(detail: str, status: int) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status, json_dumps_params={"ensure_ascii": False})


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return api_error(_("Malformed request."), 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return api_error(_("You do not have permission to perform this action."), 403)
    return defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return api_error(_("Not found."), 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return api_error(_("A server error occurred."), 500)
    return defaults.server_error(request)
