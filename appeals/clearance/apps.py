from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClearanceConfig(AppConfig):
    """Community clearance: SMS-link confirmations, the worker's worklist, investigations."""

    name = "appeals.clearance"
    label = "clearance"
    verbose_name = _("Community clearance")
