from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from healthkit import views_health
from healthkit.views_schema import SchemaView

urlpatterns = [
    # Load-balancer probes (docs/deploy.md): alive, and ready to serve.
    path("healthz", views_health.healthz, name="healthz"),
    path("readyz", views_health.readyz, name="readyz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    # Split view: the page's start-up script is its own URL (?script), so no inline script; the
    # Swagger UI files come from drf-spectacular-sidecar's static files, never a CDN.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("healthkit.console_urls")),
    path("", include("communities.urls")),
    # Each app owns its URLconf; these lines are the only wiring between them.
    path("api/v1/", include("healthkit.api_urls")),
    path("", include("appeals.urls")),
    path("", include("appeals.clearance.urls")),
    path("", include("appeals.oversight.urls")),
    path("", include("venues.urls")),
]

# Under /api/ Django's own errors (no route, a crash, a refused request) are {"detail"} JSON.
handler400 = "healthkit.views_errors.bad_request"
handler403 = "healthkit.views_errors.permission_denied"
handler404 = "healthkit.views_errors.not_found"
handler500 = "healthkit.views_errors.server_error"
