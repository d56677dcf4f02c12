"""`manage.py check --deploy` checks of our own: settings that are fine in development and
dangerous in production."""

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register

NOT_FOR_PRODUCTION_SMS = {"healthkit.sms.ConsoleBackend", "healthkit.sms.MemoryBackend"}


@register(Tags.security, deploy=True)
def check_sms_backend(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    """The console and in-memory SMS backends send nothing: residents would never get their
    codes and links (and the console one writes their masked text into the server's log)."""
    if settings.SMS_BACKEND in NOT_FOR_PRODUCTION_SMS:
        return [Warning(
            f"SMS_BACKEND is {settings.SMS_BACKEND}: no SMS reaches a resident.",
            hint="Set SMS_BACKEND=healthkit.sms.HttpBackend with SMS_HTTP_URL and SMS_HTTP_TOKEN.",
            id="healthkit.W001",
        )]
    return []
