from django.conf import settings
from django.http import HttpRequest

from healthkit.unsent import unsent_take


def site(request: HttpRequest) -> dict[str, object]:
    """What pages tell people about the service, from the settings that enforce it (so a page
    never promises a limit the code does not apply)."""
    return {
        "OFFICIAL_SITE_URL": settings.OFFICIAL_SITE_URL,
        "APPEAL_CODE_MINUTES": max(1, settings.APPEALS_CODE_TTL_SECONDS // 60),
        "APPEAL_MAX_SCREENSHOTS": settings.APPEALS_EVIDENCE_MAX_FILES,
    }


def unsent(request: HttpRequest) -> dict[str, object]:
    """A form sent after the session ended: what was typed, for the page the person is back on."""
    return {"unsent_form": unsent_take(request)}
