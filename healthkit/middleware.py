"""Response headers set at one boundary for every page."""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

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
