from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class HealthkitConfig(AppConfig):
    name = "healthkit"
    verbose_name = _("Popup core")

    def ready(self) -> None:
        # Every log handler masks tokens (Open311 api_key, link tokens) before writing.
        from healthkit import checks, logfilters  # noqa: F401 - importing registers the checks

        logfilters.install()
        # The simulator's engine event types (venues registers venue_scan/venue_risk itself).
        from healthkit.scenario import register_engine_events

        register_engine_events()
        # Logging out (console or admin) ends the person's API token: Django's own logout hook,
        # the one place both logouts pass.
        from django.contrib.auth.signals import user_logged_out

        from healthkit.auth import on_logout

        user_logged_out.connect(on_logout, dispatch_uid="healthkit.auth.on_logout")


class HealthkitAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the project's site as `admin.site`: every changelist bounded
    at any table size (healthkit.admin_site)."""

    default = False  # healthkit's own config stays HealthkitConfig
    default_site = "healthkit.admin_site.AdminSite"
