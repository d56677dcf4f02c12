from django.conf import settings
from django.http import HttpRequest

from healthkit.unsent import form_page, unsent_take


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


def page_address(request: HttpRequest) -> dict[str, object]:
    """Where the language switch brings the reader back: this page, or for a page answering a
    form (a refused action shown at its POST-only address) the page the form was on, so the
    switch never ends on "405 method not allowed"."""
    here = request.get_full_path()
    if request.method == "POST":
        here = form_page(request) or here
    return {"page_address": here}
