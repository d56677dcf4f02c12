"""What residents are told by SMS, composed one way for every app.

Every text starts with the same signature (settings.SMS_SIGNATURE, e.g. "【12345】"), carries
the reference where there is one, is written in the resident's language (not the worker's
console language), and ends with the official site and the free-service warning. One SMS per
change: the caller names the change in `key` (the SmsMessage idempotency key), so a retried
job never sends twice. Non-urgent news written during quiet hours waits until morning
(`not_before` on the row, honoured by the SMS dispatcher).

Also here: the popup news sweep. Popups close in many places (the engine's set-wise lifts, a
venue risk window withdrawn, a community decision, an administrator); rather than each of them
texting, one bounded sweep texts the resident once per closed popup.
"""

import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from communities.models import Resident, ResidentPhone
from healthkit import clock
from healthkit.models import PopupEvent, SmsMessage
from healthkit.sms import sms_enqueue

# How far back the popup news sweep looks: a closure older than this is not news any more.
POPUP_NEWS_WINDOW = dt.timedelta(hours=48)


def quiet_hours_end(at: dt.datetime) -> dt.datetime | None:
    """The morning instant non-urgent news written at `at` waits for, or None outside quiet hours."""
    start, end = settings.SMS_QUIET_HOURS_START, settings.SMS_QUIET_HOURS_END
    if start == end:
        return None
    local = timezone.localtime(at)
    quiet = (local.hour >= start or local.hour < end) if start > end else (start <= local.hour < end)
    if not quiet:
        return None
    morning = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if morning <= local:
        morning += dt.timedelta(days=1)
    return morning


def sms_footer() -> str:
    return _("Official site: %(site)s. This service is free: nobody will ever ask you for money.") % {
        "site": settings.OFFICIAL_SITE_URL,
    }


def compose_sms(*, compose: Callable[[], str], reference: str = "", language: str | None = None,
                footer: bool = True) -> str:
    """Signature + text + reference + footer, all in `language` (default: the site's)."""
    with translation.override(language or settings.LANGUAGE_CODE):
        parts = [settings.SMS_SIGNATURE + compose()]
        if reference:
            parts.append(_("Reference: %(ref)s.") % {"ref": reference})
        if footer:
            parts.append(sms_footer())
        return " ".join(parts)


def resident_sms(*, phone: str | None, key: str, purpose: str, compose: Callable[[], str],
                 reference: str = "", resident: Resident | None = None, language: str | None = None,
                 urgent: bool = False, footer: bool = True, at: dt.datetime | None = None) -> SmsMessage | None:
    """Queue one SMS to a resident (or a filer) in the caller's transaction; no phone, no SMS.

    `key` names the change (idempotent: the same key never sends twice); `urgent` news (codes,
    emergencies, the answer to what the person just did) is sent at once, other news written
    during quiet hours waits until morning.
    """
    if not phone:
        return None
    body = compose_sms(compose=compose, reference=reference, language=language, footer=footer)
    not_before = None if urgent else quiet_hours_end(at or clock.now())
    return sms_enqueue(phone=phone, body=body, purpose=purpose, idempotency_key=key, resident=resident,
                       not_before=not_before)


def resident_record_phone(resident: Resident) -> str | None:
    """The resident's own phone on record (primary first): popup news goes there only, never to a
    phone someone else gave when filing."""
    phone = resident.phones.order_by("-is_primary", "id").first()
    return phone.reveal_phone() if phone else None


def popup_closed_key(popup_id: int) -> str:
    """One SMS per closed popup."""
    return f"popup:{popup_id}:closed"


def _popup_closed_text(event: PopupEvent) -> str:
    n = event.case.popup_type
    if event.kind == PopupEvent.Kind.WITHDRAWN:
        text = _("Your health-kit popup %(n)d has been withdrawn: it should not have been raised (for "
                 "example, a venue's risk period was withdrawn). You need to do nothing.")
    elif event.actor_id is None and event.actor_label == "engine":
        text = _("Your health-kit popup %(n)d has been lifted automatically: what raised it has ended. "
                 "You need to do nothing.")
    else:
        text = _("Your health-kit popup %(n)d has been lifted after review. You need to do nothing.")
    return (text % {"n": n}) + " " + _(
        "If it still shows after you refresh your health kit, or a ticket purchase is refused after "
        "24 hours, call 12345.")


def popup_closed_notify(*, at: dt.datetime | None = None, limit: int = 2000) -> int:
    """Text each resident whose popup was lifted or withdrawn (for any reason) in the last
    POPUP_NEWS_WINDOW and who has not been told yet: one SMS per popup (idempotency key
    `popup:<id>:closed`). A lift by a community decision is left out: clearance texts that
    decision itself, with the appeal's reference (one SMS per change). Bounded per run; the
    next run takes the rest. Returns the number queued."""
    at = at or clock.now()
    told = SmsMessage.objects.filter(idempotency_key=Concat(
        Value("popup:"), Cast(OuterRef("case_id"), CharField()), Value(":closed")))
    events = (PopupEvent.objects
              .filter(kind__in=[PopupEvent.Kind.LIFTED, PopupEvent.Kind.WITHDRAWN],
                      at__gte=at - POPUP_NEWS_WINDOW, at__lte=at)
              .filter(~Exists(told))
              # a community decision's lift is told by clearance itself (with its reference)
              .exclude(data__has_key="clearance_task")
              # nobody to text: left out, so they never hold up the residents behind them
              .filter(Exists(ResidentPhone.objects.filter(resident_id=OuterRef("case__resident_id"))))
              .select_related("case__resident").order_by("at", "id")[:limit])
    queued = 0
    for event in events:
        resident = event.case.resident
        message = resident_sms(phone=resident_record_phone(resident), key=popup_closed_key(event.case_id),
                               purpose=f"popup_{event.kind}", resident=resident, at=at,
                               compose=lambda event=event: _popup_closed_text(event))
        queued += message is not None
    return queued
