"""The SMS a filer gets about their appeal: filed, merged, routed, waiting for them, closed.

Composed through healthkit.notify (same signature, the reference, the filer's language, quiet
hours, one SMS per change by idempotency key). Called by appeals.services inside the
transaction that makes the change.

Who is told what: the SMS goes to the appeal's contact phone (else the resident's phone on
record). A filer whose phone is not on the resident's record (`filer_confirmed` is False) hears
only about their own filing's progress: never a community, a popup or an outcome that would
tell them something about the resident's record.
"""

import datetime as dt

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from appeals.models import OUTCOME_LABELS, Appeal, AppealLink
from communities import pii
from communities.models import Community, ResidentPhone
from healthkit.notify import resident_record_phone, resident_sms


def filer_confirmed(appeal: Appeal) -> bool:
    """Whether whoever filed is confirmed as the resident: filed without a phone of their own, or
    from a phone on the resident's record. An online filing from another phone
    (`filer_unconfirmed`), a caller or an Open311 client giving a phone not on record are not."""
    if appeal.filer_unconfirmed:
        return False
    if not appeal.contact_phone_hash:
        return True
    return ResidentPhone.objects.filter(resident_id=appeal.resident_id, phone_hash=appeal.contact_phone_hash).exists()


def _phone(appeal: Appeal) -> str | None:
    if appeal.contact_phone_encrypted:
        return pii.decrypt(appeal.contact_phone_encrypted)
    if appeal.filer_unconfirmed:
        return None
    return resident_record_phone(appeal.resident)


def status_url() -> str:
    return settings.OFFICIAL_SITE_URL.rstrip("/") + reverse("appeals:status")


def _when(instant: dt.datetime | None) -> str:
    return timezone.localtime(instant).strftime("%Y-%m-%d %H:%M") if instant else ""


def _send(appeal: Appeal, *, key: str, purpose: str, compose, urgent: bool = False,
          idempotency_key: str = "") -> None:
    if appeal.priority == Appeal.Priority.EMERGENCY:
        purpose = f"emergency_{purpose}"  # the codes queue's worker sends it (healthkit/queues.py)
    resident_sms(
        phone=_phone(appeal), key=idempotency_key or f"appeal:{appeal.pk}:{key}", purpose=purpose,
        compose=compose, reference=appeal.reference, resident=appeal.resident,
        language=appeal.language or None, urgent=urgent or appeal.priority == Appeal.Priority.EMERGENCY,
    )


def notify_filed(appeal: Appeal, *, folded: bool) -> None:
    """On every channel: the reference, what happens next, when to expect it (the category's
    SLA), the status page and the free-service warning (footer). Sent at once: it answers what
    the filer just did."""
    hours = settings.APPEALS_SLA_HOURS.get(int(appeal.priority), 24)

    def compose() -> str:
        if folded:
            text = _("Your new message was added to your open appeal; keep following this reference.")
        else:
            text = _("We have received your appeal (%(category)s).") % {
                "category": Appeal.Category(appeal.category).label}
        return text + " " + _(
            "Next: a 12345 operator checks it and, where needed, passes it to the community. Expect an "
            "answer within %(hours)s hours (by %(due)s). Follow it at %(url)s.") % {
            "hours": f"{hours:g}", "due": _when(appeal.sla_due_at), "url": status_url()}

    key = f"repeat:{appeal.repeat_count}" if folded else "filed"
    _send(appeal, key=key, purpose="appeal_filed", compose=compose, urgent=True)


def notify_merged(duplicate: Appeal, into: Appeal) -> None:
    """The duplicate's filer learns which reference to follow now (only if that appeal is theirs
    too: an unconfirmed filer is not handed the resident's reference)."""
    same_filer = filer_confirmed(duplicate) and filer_confirmed(into) or (
        bool(duplicate.contact_phone_hash) and duplicate.contact_phone_hash == into.contact_phone_hash)

    def compose() -> str:
        if same_filer:
            return _("Your appeal was merged into appeal %(into)s about the same request: follow %(into)s from "
                     "now on at %(url)s.") % {"into": into.reference, "url": status_url()}
        return _("Your appeal was combined with another request about the same matter and is closed; the "
                 "hotline goes on handling that request.")

    _send(duplicate, key="merged", purpose="appeal_merged", compose=compose)


def routed_text(appeal: Appeal, community: Community) -> str:
    """Which community handles the appeal now, its duty phone where known, and when it acts."""
    hours = (settings.CLEARANCE_SLA_EMERGENCY_HOURS if appeal.priority == Appeal.Priority.EMERGENCY
             else settings.CLEARANCE_SLA_HOURS)
    text = _("Your appeal has been passed to %(community)s, which will contact you within %(hours)s "
             "hours.") % {"community": community.name, "hours": hours}
    if community.phone:
        text += " " + _("Its duty phone: %(phone)s.") % {"phone": community.phone}
    return text


def notify_routed(appeal: Appeal, community: Community) -> None:
    """The routing told on its own (appeal_route for an unconfirmed filer, who is told only that
    a community checks it; clearance when the appeal joins a task already open or moves to
    another community). A new community task tells the confirmed resident with its link instead
    (clearance_open_for_appeal): one SMS per change."""
    confirmed = filer_confirmed(appeal)

    def compose() -> str:
        if not confirmed:
            return _("Your appeal has been passed to the responsible community, which is checking the "
                     "details. We will text you when it is closed.")
        return routed_text(appeal, community)

    _send(appeal, key=f"routed:{community.pk}", purpose="appeal_routed", compose=compose)


def notify_waiting(appeal: Appeal, *, link: AppealLink, url: str, message: str = "") -> None:
    """What the hotline needs from the resident and by when (the link's expiry)."""

    def compose() -> str:
        text = _("Please add evidence to your appeal at %(url)s by %(until)s (the link works once).") % {
            "url": url, "until": _when(link.expires_at)}
        return text + (" " + message[:140] if message else "")

    _send(appeal, key="", purpose="appeal_evidence_request", compose=compose,
          idempotency_key=f"appeal-evidence:{link.pk}")


# The next step for each outcome, in the filer's words.
def next_step_text(outcome: str) -> str:
    steps = {
        "lifted": _("Nothing more to do. If the popup still shows after 24 hours, call 12345."),
        "no_popup": _("If a popup still shows in your health kit, call 12345."),
        "rejected": _("You can file a new appeal when your situation changes, or call 12345."),
        "duplicate": _("Follow your other appeal."),
        "merged": _("Follow the appeal it was merged into."),
        "withdrawn": _("Nothing more to do."),
    }
    return steps.get(outcome, _("If you need more help, call 12345."))


def notify_closed(appeal: Appeal, *, community_goes_on: Community | None = None) -> None:
    """The outcome in words and the next step (an unconfirmed filer: only that it is closed).
    `community_goes_on`: a community's work on the popup continues without the appeal (its
    investigation had started, or it was opened for the popup itself): said, so that its later
    decision is no surprise."""
    confirmed = filer_confirmed(appeal)

    def compose() -> str:
        if not confirmed:
            return _("Your appeal has been handled and is closed. If you need more help, call 12345.")
        label = OUTCOME_LABELS.get(appeal.outcome)
        text = _("Your appeal is closed: %(outcome)s.") % {"outcome": label or _("closed")}
        if appeal.close_reason and appeal.outcome not in ("lifted", "merged"):
            text += " " + _("Reason: %(reason)s.") % {"reason": appeal.close_reason.rstrip(".。!！ ")}
        text += " " + next_step_text(appeal.outcome)
        if community_goes_on is not None:
            text += " " + _("%(community)s goes on with the checks it has started on your popup and will text "
                            "you its decision.") % {"community": community_goes_on.name}
        return text

    _send(appeal, key="closed", purpose="appeal_closed", compose=compose)
