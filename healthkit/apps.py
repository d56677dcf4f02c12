from django.apps import AppConfig
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
