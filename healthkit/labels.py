"""Display names for the codes that background jobs write as an event's actor.

Events written by a person carry the user (or their user name); events written by a job carry
a short code (`actor_label`), which staff and residents should read in their own language.
"""

from django.utils.translation import gettext_lazy as _

SYSTEM_ACTORS = {
    "engine": _("Popup engine"),
    "upstream": _("Upstream data feed"),
    "community": _("Community"),
    "resident": _("Resident"),
    "system": _("System"),
    "sla-sweep": _("SLA monitor"),
    "clearance": _("Community clearance"),
    "clearance-sweep": _("Community clearance"),
    "relief": _("Relief job"),
    "scenario": _("Simulator"),
    "venues": _("Venue exposure"),
    "venue-exposure": _("Venue exposure"),
}


def actor_name(label: str) -> str:
    """A job's display name for its code; anything else (a user name) as written."""
    return str(SYSTEM_ACTORS.get(label, label))
