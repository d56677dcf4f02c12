"""Opening tasks, the resident's one-time links and what they submit through them."""

import datetime as dt
import hashlib
import secrets
import unicodedata
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from appeals.clearance.models import (
    ClearanceEvent,
    ClearanceLink,
    ClearanceTask,
)
from appeals.clearance.services.common import (
    _event,
    _notify,
    clearance_task_transition,
    sla_hours_for,
)
from appeals.clearance.tokens import signer as _signer
from appeals.clearance.tokens import token_hash
from appeals.models import Appeal
from communities import pii
from communities.models import Community, Resident, User
from healthkit import clock
from healthkit.errors import ApplicationError
from healthkit.models import PopupCase
from healthkit.services import (
    popup_case_transition,
)


def _open_task_for(*, popup: PopupCase | None, appeal: Appeal | None) -> ClearanceTask | None:
    match = Q()
    if popup is not None:
        match |= Q(popup=popup)
    if appeal is not None:
        match |= Q(appeal=appeal)
    if not match:
        return None
    return (ClearanceTask.objects.select_for_update()
            .filter(match, state__in=ClearanceTask.OPEN_STATES).order_by("id").first())


@transaction.atomic
def clearance_task_open(
    *,
    resident: Resident,
    community: Community,
    origin: str,
    popup: PopupCase | None = None,
    appeal: Appeal | None = None,
    priority: int = ClearanceTask.Priority.NORMAL,
    actor: User | None = None,
    reason: str = "",
    send_link: bool = True,
    at: dt.datetime | None = None,
) -> tuple[ClearanceTask, bool]:
    """Open the community's task for a popup or appeal, or return the open one (idempotent).

    An appeal routed for a popup that already has an open task joins it (and raises its priority
    if the appeal is more urgent). A new task sends the resident a link SMS when `send_link`.
    """
    at = at or clock.now()
    existing = _open_task_for(popup=popup, appeal=appeal)
    if existing is not None:
        return _join(task=existing, appeal=appeal, priority=priority, actor=actor, at=at), False
    try:
        with transaction.atomic():
            task = ClearanceTask.objects.create(
                resident=resident, community=community, origin=origin, popup=popup, appeal=appeal,
                priority=priority, sla_due_at=at + dt.timedelta(hours=sla_hours_for(priority)),
                outside_since=appeal.outside_since if appeal else None,
                wishes_to_return=bool(appeal and appeal.wishes_to_return),
                # The letter is asked for where the popup's policy says so (params
                # "commitment_letter"), on the self-drive route, or later by an investigation.
                commitment_required=origin == ClearanceTask.Origin.CHECKPOINT or _policy_asks_letter(popup),
                created_at=at,
            )
    except IntegrityError:
        # A concurrent opener won the partial unique index: join its task.
        existing = _open_task_for(popup=popup, appeal=appeal)
        if existing is None:
            raise
        return _join(task=existing, appeal=appeal, priority=priority, actor=actor, at=at), False
    _event(task=task, kind=ClearanceEvent.Kind.OPENED, actor=actor, reason=reason, to_state=task.state,
           data={"origin": origin, "popup": popup.pk if popup else None, "appeal": appeal.pk if appeal else None},
           at=at)
    if send_link:
        clearance_link_issue(task=task, at=at)
    return task, True


def _policy_asks_letter(popup: PopupCase | None) -> bool:
    policy = popup.policy if popup is not None and popup.policy_id else None
    return bool(policy and policy.params.get("commitment_letter"))


def _join(*, task: ClearanceTask, appeal: Appeal | None, priority: int, actor: User | None,
          at: dt.datetime) -> ClearanceTask:
    changed = []
    if appeal is not None and task.appeal_id is None:
        task.appeal = appeal
        task.wishes_to_return = task.wishes_to_return or appeal.wishes_to_return
        task.outside_since = task.outside_since or appeal.outside_since
        changed += ["appeal", "wishes_to_return", "outside_since"]
        _event(task=task, kind=ClearanceEvent.Kind.APPEAL_JOINED, actor=actor, data={"appeal": appeal.pk}, at=at)
    if priority < task.priority:
        due = at + dt.timedelta(hours=sla_hours_for(priority))
        task.priority = priority
        task.sla_due_at = min(task.sla_due_at, due) if task.sla_due_at else due
        changed += ["priority", "sla_due_at"]
        _event(task=task, kind=ClearanceEvent.Kind.PRIORITISED, actor=actor, data={"priority": priority}, at=at)
    if changed:
        task.save(update_fields=[*changed, "updated_at"])
    return task


def link_url(token: str) -> str:
    return settings.OFFICIAL_SITE_URL.rstrip("/") + reverse("clearance:link", args=[token])


@transaction.atomic
def clearance_link_issue(*, task: ClearanceTask, purpose: str = ClearanceLink.Purpose.CONFIRM,
                         question: str = "", at: dt.datetime | None = None,
                         lead: Callable[[], str] | None = None, urgent: bool = False) -> tuple[ClearanceLink, str]:
    """Create a one-time link and queue the SMS carrying it (with the worker's `question`, if
    any). Returns (link, signed token). `lead` opens the same SMS with the news that made the
    link necessary (a checkpoint acceptance, an investigation's measures): one SMS per change.

    The URL carries only an opaque signed random token; the database keeps its hash. Earlier
    unused links of the same purpose are revoked, so only the latest SMS works.
    """
    at = at or clock.now()
    raw = secrets.token_urlsafe(24)
    ClearanceLink.objects.filter(task=task, purpose=purpose, used_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=at)
    link = ClearanceLink.objects.create(
        task=task, purpose=purpose, token_hash=token_hash(raw), created_at=at,
        expires_at=at + dt.timedelta(hours=settings.CLEARANCE_LINK_TTL_HOURS),
    )
    token = _signer().sign(raw)

    def compose() -> str:
        if purpose == ClearanceLink.Purpose.CONFIRM and lead is not None and not question:
            text = lead() + " " + _("Please confirm your details here: %(url)s (valid until %(until)s, works once).")
        elif purpose == ClearanceLink.Purpose.COMMITMENT and lead is not None:
            text = lead() + " " + _("Sign the commitment letter online: %(url)s (valid until %(until)s, works once).")
        elif purpose == ClearanceLink.Purpose.COMMITMENT:
            text = _("Your community %(community)s asks you to sign the commitment letter online: %(url)s "
                     "(valid until %(until)s, works once).")
        elif question:
            text = _("Your community %(community)s asks: %(question)s Please answer here: %(url)s "
                     "(valid until %(until)s, works once).")
        else:
            text = _("Your community %(community)s needs you to confirm your details so it can review your "
                     "health-kit popup: %(url)s (valid until %(until)s, works once).")
        return text % {
            "community": task.community.name, "url": link_url(token), "question": question,
            "until": timezone.localtime(link.expires_at).strftime("%Y-%m-%d %H:%M"),
        }

    _notify(task=task, purpose=f"clearance_{purpose}", key=f"link:{link.pk}", compose=compose, urgent=urgent, at=at)
    _event(task=task, kind=ClearanceEvent.Kind.LINK_SENT, data={"purpose": purpose, "link": link.pk,
                                                                "expires_at": link.expires_at.isoformat()}, at=at)
    return link, token


@transaction.atomic
def clearance_open_for_appeal(*, appeal: Appeal) -> ClearanceTask | None:
    """The community's task for a routed appeal (idempotent). Returns None if the appeal is not
    (or no longer) routed to a community. If the hotline re-routed the appeal to another
    community, the open task moves there (the earlier community no longer sees it)."""
    # The routed community, else the resident's registered one: never just the community a filer
    # named, which sees the filer's words only (appeals.selectors.can_see_record), not a task with
    # the resident's record.
    if not appeal.is_open or appeal.resident_id is None:
        return None
    # Re-read under locks, tasks first (the order a community decision takes them in): the hotline
    # may have closed or re-routed the appeal, or a community decided it, since this was queued.
    _open_task_for(popup=appeal.popup if appeal.popup_id else None, appeal=appeal)
    # The row alone, then read with its relations (a concurrent re-route changes routed_community:
    # with a join, the locked row would be re-checked against the community read before and lost).
    Appeal.objects.select_for_update(no_key=True).filter(pk=appeal.pk).values_list("pk").first()
    appeal = Appeal.objects.select_related("resident", "popup", "routed_community", "community").get(pk=appeal.pk)
    if not appeal.is_open or appeal.resident_id is None:
        return None
    community = appeal.routed_community or appeal.resident.community
    if community is None:
        return None
    from appeals import notices

    priority = min(int(appeal.priority), ClearanceTask.Priority.NORMAL)
    had_task = ClearanceTask.objects.filter(appeal=appeal, state__in=ClearanceTask.OPEN_STATES).exists()
    task, created = clearance_task_open(
        resident=appeal.resident, community=community, origin=ClearanceTask.Origin.APPEAL,
        popup=appeal.popup if appeal.popup_id and appeal.popup.is_open else None, appeal=appeal,
        priority=priority, reason=_("Appeal %(ref)s routed to the community.") % {"ref": appeal.reference},
        send_link=False,
    )
    if not created and appeal.routed_community_id and task.community_id != appeal.routed_community_id:
        # A task of the popup's, joined here, held by another community: it moves as a re-route
        # does (appeal_route moves the appeal's own task itself), with the resident's SMS.
        from appeals.clearance.services.follow import _move

        task = _move(task=task, appeal=appeal, actor=None, reason="", at=clock.now())
        had_task = True
    # The resident hears of the routing once (a filer not confirmed as the resident was told by
    # appeal_route): with the link in the same SMS for a new task, alone when the appeal joined a
    # task already open. A rerun sends nothing new.
    if notices.filer_confirmed(appeal):
        if created:
            clearance_link_issue(task=task, lead=lambda: notices.routed_text(appeal, task.community))
        elif not had_task:
            notices.notify_routed(appeal, task.community)
    elif created:
        clearance_link_issue(task=task)
    return task


# --- the resident's submission through the link -------------------------------------------


class LinkRefused(ApplicationError):
    """The link is tampered, unknown, expired, used or replaced; `extra["reason"]` says which."""


COMMITMENT_LETTER_VERSION = "2022-11"


def commitment_letter_text() -> str:
    return _(
        "I commit that the information I gave is true and complete. On my return I will report to my "
        "community, take the nucleic-acid tests it asks for on the days it names, stay at the address "
        "I gave during any home observation, and tell the community at once if I have a fever, cough "
        "or other symptoms. I understand that false statements have legal consequences."
    )


def unsign_token(token: str) -> str:
    """The random part of a link token, or LinkRefused("invalid") if the signature does not match."""
    try:
        return _signer().unsign(token)
    except signing.BadSignature as exc:
        raise LinkRefused(_("This link is not valid."), extra={"reason": "invalid"}) from exc


def _consume_link(*, token: str, at: dt.datetime) -> ClearanceLink:
    """Mark the link used with one conditional UPDATE (so two submissions cannot both win).

    The UPDATE names only the link's own columns: a join (Django turns it into `id IN (SELECT
    ...)`) is not re-checked after waiting for a concurrent writer's lock, and let every
    concurrent submission through (tests/clearance/test_link_concurrency.py). The task's state
    is checked after, under the task's row lock; refusing then rolls the UPDATE back.
    """
    digest = token_hash(unsign_token(token))
    used = ClearanceLink.objects.filter(
        token_hash=digest, used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=at,
    ).update(used_at=at)
    link = ClearanceLink.objects.filter(token_hash=digest).first()
    task_open = link is not None and ClearanceTask.objects.select_for_update().filter(
        pk=link.task_id, state__in=ClearanceTask.OPEN_STATES).exists()
    if used != 1 or not task_open:
        from appeals.clearance.selectors import link_status

        reason = link_status(token, at=at).reason if used != 1 else "closed"
        raise LinkRefused(_("This link can no longer be used."), extra={"reason": reason})
    return link


def _start_review(task: ClearanceTask, at: dt.datetime) -> None:
    if task.popup_id:  # under review only if still active once locked (the engine may lift it meanwhile)
        popup_case_transition(case=task.popup, to=PopupCase.State.UNDER_REVIEW, actor_label="clearance",
                              reason=_("The resident confirmed their details to the community."),
                              data={"clearance_task": task.pk}, at=at, only_from={PopupCase.State.ACTIVE})


class SignatureMismatch(ApplicationError):
    """The typed name is not the name of the resident the link was issued to."""


# Name separators people type in several forms (minority names: 阿依古丽·买买提).
_NAME_DOTS = str.maketrans({"・": "·", "･": "·", "•": "·", ".": "·", "．": "·"})


def signature_name_key(value: str) -> str:
    """A name as compared for signing: full-width forms folded (NFKC), spaces of every kind
    dropped, name dots unified, case ignored."""
    return "".join(unicodedata.normalize("NFKC", value or "").split()).translate(_NAME_DOTS).casefold()


def letter_digest(text: str) -> str:
    """SHA-256 of the letter as shown (version and text): the worker can tell which text was signed."""
    return hashlib.sha256(f"{COMMITMENT_LETTER_VERSION}\n{text}".encode()).hexdigest()


def clearance_confirm_submit(*, token: str, confirmation: dict[str, Any], contact_phone: str = "",
                             signature: str = "", at: dt.datetime | None = None) -> ClearanceTask:
    """Record what the resident submitted through their link; the link is spent in the same
    transaction (works once). `confirmation` holds the form's plain answers (no ID number).

    The commitment letter is signed only by the resident the link was issued to: the typed name
    must match the record (`signature_name_key`). A mismatch is refused (SignatureMismatch, the
    link stays usable) and counted: a "signature_refused" event, written after the rollback.

    Raises LinkRefused when the link is tampered, expired, used, replaced or its task closed;
    ApplicationError when the commitment letter is required but not signed.
    """
    at = at or clock.now()
    try:
        return _confirm_submit(token=token, confirmation=confirmation, contact_phone=contact_phone,
                               signature=signature, at=at)
    except SignatureMismatch:
        _signature_refused(token=token, at=at)
        raise


@transaction.atomic
def _signature_refused(*, token: str, at: dt.datetime) -> None:
    link = ClearanceLink.objects.filter(token_hash=token_hash(unsign_token(token))).first()
    if link is not None:
        _event(task=link.task, kind=ClearanceEvent.Kind.SIGNATURE_REFUSED, actor_label="resident",
               data={"link": link.pk}, at=at)


@transaction.atomic
def _confirm_submit(*, token: str, confirmation: dict[str, Any], contact_phone: str, signature: str,
                    at: dt.datetime) -> ClearanceTask:
    link = _consume_link(token=token, at=at)
    task = (ClearanceTask.objects.select_for_update(of=("self",)).select_related("popup", "resident")
            .get(pk=link.task_id))
    needs_letter = task.commitment_required and task.commitment_signed_at is None
    if link.purpose == ClearanceLink.Purpose.COMMITMENT or (needs_letter and signature):
        if not signature.strip():
            raise ApplicationError(_("Please sign the commitment letter by typing your full name."))
        if signature_name_key(signature) != signature_name_key(task.resident.name):
            raise SignatureMismatch(
                _("The name you typed is not the name of the person this letter was sent to. Only that "
                  "person can sign it: type your full name as registered, or call your community."),
                extra={"field": "signature"})
        letter = commitment_letter_text()
        task.commitment_signed_at = at
        task.commitment_digest = hashlib.sha256(
            f"{COMMITMENT_LETTER_VERSION}\n{letter}\n{signature.strip()}\n{task.pk}\n{at.isoformat()}"
            .encode()).hexdigest()
        # Who signed (the resident, their name matched the record), when, through which link, and
        # which text: the worker's task page reads this event.
        _event(task=task, kind=ClearanceEvent.Kind.COMMITMENT_SIGNED, actor_label="resident",
               data={"version": COMMITMENT_LETTER_VERSION, "link": link.pk, "link_purpose": link.purpose,
                     "link_sent_at": link.created_at.isoformat(), "name_matched": True,
                     "letter_sha256": letter_digest(letter), "signature_sha256": task.commitment_digest}, at=at)
    if link.purpose == ClearanceLink.Purpose.CONFIRM:
        task.confirmation = {**confirmation, "submitted_at": at.isoformat()}
        task.confirmed_at = at
        if confirmation.get("outside_since"):
            task.outside_since = dt.date.fromisoformat(confirmation["outside_since"])
        if confirmation.get("location") == "outside":
            task.wishes_to_return = bool(confirmation.get("return_date"))
        if contact_phone:
            number = pii.validate_phone(contact_phone)
            task.contact_phone_encrypted = pii.encrypt(number)
            task.contact_phone_masked = pii.mask_phone(number)
    task.save()
    if link.purpose == ClearanceLink.Purpose.CONFIRM and task.state in (ClearanceTask.State.OPEN,
                                                                         ClearanceTask.State.INFO_REQUESTED):
        task = clearance_task_transition(task=task, to=ClearanceTask.State.CONFIRMED,
                                         kind=ClearanceEvent.Kind.CONFIRMED, actor_label="resident",
                                         data={"link": link.pk}, at=at)
    elif link.purpose == ClearanceLink.Purpose.CONFIRM:
        _event(task=task, kind=ClearanceEvent.Kind.CONFIRMED, actor_label="resident", data={"link": link.pk}, at=at)
    _start_review(task, at)
    # measures builds on links (imports them), hence the import here
    from appeals.clearance.services.measures import clearance_measures_complete

    clearance_measures_complete(task=task, at=at)
    return task


