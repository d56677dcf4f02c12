from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VenuesConfig(AppConfig):
    name = "venues"
    verbose_name = _("Venues")

    def ready(self) -> None:
        # The simulator's venue_scan / venue_risk events (the popup core never imports venues).
        from venues.scenario import register_venue_events

        register_venue_events()
