from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OversightConfig(AppConfig):
    """The supervisor's dashboard: summary tables a beat job refreshes, charts, exports."""

    name = "appeals.oversight"
    label = "oversight"
    verbose_name = _("Oversight")
