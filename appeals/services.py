"""Writes of the appeals app: filing, folding repeats, evidence, operator actions, SLA sweep.

Every change of an appeal writes an AppealEvent in the same transaction (the history page and
the audit are reads of those rows). Functions are keyword-only and raise ApplicationError with a
message a person can read.
"""

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from appeals import notices, ratelimit
from appeals.evidence import (
    CleanImage,
    EvidenceRejected,
    EvidenceStorageUnavailable,
    clean_image,
    storage_errors,
    storage_failed_message,
)
from appeals.models import (
    OPERATOR_OUTCOMES,
    OUTCOME_LABELS,
    Appeal,
    AppealContact,
    AppealEvent,
    AppealEvidence,
    AppealLink,
)
from appeals.selectors import can_reveal_resident, resident_open_popups
from communities import pii
from communities.models import Community, PersonalDataAccess, Resident, User
from communities.selectors import community_find, resident_by_id_number
from communities.services import access_log, resident_get_or_create, resident_reveal_scoped
from healthkit import clock
from healthkit.concurrency import check_seen, touch
from healthkit.errors import ApplicationError, IllegalTransition
from healthkit.models import PopupCase, PopupType
from healthkit.notify import compose_sms
from healthkit.permissions import has_role
from healthkit.sms import sms_enqueue

logger = logging.getLogger(__name__)
HANDLER_ROLES = (User.Role.OPERATOR, User.Role.SUPERVISOR, User.Role.ADMINISTRATOR)
# Stored, not translated: history labels are data (the page translates event kinds, not actors).
RESIDENT_LABEL = "resident"
_REF_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: read aloud on the phone


def _reference() -> str:
    # 32^7 ≈ 3.4e10 per day: at 100 k appeals a day about one clash a week, which
    # _create_with_reference absorbs by drawing again.
    return f"{clock.today():%y%m%d}-{''.join(secrets.choice(_REF_ALPHABET) for _ in range(7))}"


def _create_with_reference(**fields) -> Appeal:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Appeal.objects.create(reference=_reference(), **fields)
        except IntegrityError as exc:
            if "reference" not in str(exc):
                raise
    raise ApplicationError(_("Could not allocate a reference number; please try again."))


STRANDED_MIN_DAYS = 30


def stranded_problem(outside_since: dt.date | None) -> str | None:
    """Why a "stranded" appeal's date does not fit, or None. The relief job finds long-stranded
    residents by this date, so it is required, in the past, and over a month ago."""
    if outside_since is None:
        return _("Please give the date you have been outside the city since: stranded residents are "
                 "found by it.")
    if outside_since > clock.today():
        return _("This date is in the future.")
    if (clock.today() - outside_since).days < STRANDED_MIN_DAYS:
        return _("This category is for residents outside the city for over a month; "
                 "please choose “Popup correction” or an emergency instead.")
    return None


def priority_for(category: str) -> int:
    if category in Appeal.EMERGENCY_CATEGORIES:
        return Appeal.Priority.EMERGENCY
    if category == Appeal.Category.STRANDED:
        return Appeal.Priority.HIGH
    return Appeal.Priority.NORMAL


def sla_due(priority: int, start: dt.datetime) -> dt.datetime:
    hours = settings.APPEALS_SLA_HOURS.get(int(priority), 24)
    return start + dt.timedelta(hours=hours)


def appeal_event(*, appeal: Appeal, kind: str, actor: User | None = None, actor_label: str = "",
                 note: str = "", data: dict | None = None, public: bool = True) -> AppealEvent:
    if actor is not None and not actor_label:
        actor_label = actor.get_username()
    return AppealEvent.objects.create(appeal=appeal, kind=kind, actor=actor, actor_label=actor_label[:64],
                                      note=note, data=data or {}, public=public)


def _locked(appeal: Appeal, seen: str | None = None) -> Appeal:
    """The appeal's row, locked; refused (ChangedSinceSeen) if it changed since a page showed `seen`."""
    locked = Appeal.objects.select_for_update(no_key=True).get(pk=appeal.pk)
    check_seen(locked, seen)
    return locked


def _require_handler(actor: User) -> None:
    if not has_role(actor, HANDLER_ROLES):
        raise ApplicationError(_("Only hotline operators and supervisors can do this."))


def _set_status(appeal: Appeal, to: str, *, actor: User | None, reason: str = "") -> None:
    """Change status through the transition table (row already locked by the caller)."""
    if appeal.status == to:
        return
    if to not in Appeal.TRANSITIONS[appeal.status]:
        raise IllegalTransition(
            _("An appeal that is “%(from)s” cannot become “%(to)s”.")
            % {"from": Appeal.Status(appeal.status).label, "to": Appeal.Status(to).label},
            extra={"from": appeal.status, "to": to},
        )
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.STATUS_CHANGED, actor=actor, note=reason,
                 data={"from": appeal.status, "to": to})
    appeal.status = to


# --- Resident identity: one-time SMS code ---------------------------------------------------

@dataclass(frozen=True)
class CodeChallenge:
    token: str
    phone_masked: str


def _code_hash(token: str, code: str) -> str:
    return pii.keyed_hash(f"appeal-code:{token}:{code}")


def identity_code_send(*, name: str, id_number: str, phone: str, ip: str) -> CodeChallenge:
    """Validate the resident's details, rate-limit, and send a 6-digit code by SMS.

    The details wait in the cache (encrypted) under a random token until the code is entered;
    nothing is written to the database before the phone is proven. Raises ApplicationError.
    """
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ApplicationError(_("Please enter your name as on your ID card."))
    try:
        number = pii.validate_id_number(id_number)
        mobile = pii.validate_phone(phone)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages)) from None
    ratelimit.hit("code_ip", ip)
    ratelimit.hit("code_phone", pii.phone_hash(mobile))
    ratelimit.hit("code_id", pii.id_hash(number))
    token = secrets.token_urlsafe(24)
    code = f"{secrets.randbelow(10**6):06d}"
    ttl = settings.APPEALS_CODE_TTL_SECONDS
    # `add`, not `set`: False says the challenge was not kept (the cache unreachable, healthkit/cache.py),
    # and no code is sent that could never be checked.
    if not cache.add(f"appeals:code:{token}", {
        "code_hash": _code_hash(token, code), "attempts": 0,
        "name": pii.encrypt(name), "id": pii.encrypt(number), "phone": pii.encrypt(mobile),
    }, timeout=ttl):
        raise ApplicationError(_("Codes cannot be sent for a moment. Nothing you typed is lost: please try "
                                 "again in a minute."))
    # the same signature as every resident SMS; in the language of the page asking for it
    body = compose_sms(language=translation.get_language(), footer=False, compose=lambda: _(
        "Your code for a health-code popup appeal is %(code)s, valid %(minutes)d minutes. "
        "The appeal is free: never pay anyone or share this code.") % {"code": code, "minutes": ttl // 60})
    with transaction.atomic():
        sms_enqueue(phone=mobile, body=body, purpose="appeal_code", idempotency_key=f"appeal-code:{token}",
                    secrets=(code,))
    return CodeChallenge(token=token, phone_masked=pii.mask_phone(mobile))


def identity_code_resend(*, token: str, ip: str) -> CodeChallenge:
    """A new code for the same details (no retyping), under the same limits as the first."""
    entry = cache.get(f"appeals:code:{token}")
    if entry is None:
        raise ApplicationError(_("This code has expired. Please ask for a new one."))
    cache.delete(f"appeals:code:{token}")
    try:
        name, number, mobile = (pii.decrypt(entry[k]) for k in ("name", "id", "phone"))
    except pii.UndecryptableError:  # sealed under a key rotated away since: start again, no 500
        raise ApplicationError(_("This code has expired. Please ask for a new one.")) from None
    return identity_code_send(name=name, id_number=number, phone=mobile, ip=ip)


@dataclass(frozen=True)
class FilerIdentity:
    """Who a filer says they are, checked against the registry without changing it.

    A name and an ID number are not secret (the 2020 proxy look-up leak): only a filer whose name
    matches the registry *and* whose phone is one of the resident's phones on record is the
    resident. Everyone else is an unconfirmed filer, and gets exactly the same answer whether the
    ID number is unknown, the name differs or only the phone is new (no registry oracle).
    """

    resident: Resident | None  # the registry's record for the ID number given, if any
    name: str
    id_number: str
    name_matches: bool
    phone_on_record: bool

    @property
    def confirmed(self) -> bool:
        return self.resident is not None and self.name_matches and self.phone_on_record

    def claimed_fields(self) -> dict[str, str]:
        """The filer's words, stored on the appeal (never in the registry)."""
        return {"claimed_name_encrypted": pii.encrypt(self.name), "claimed_id_encrypted": pii.encrypt(self.id_number),
                "claimed_id_hash": pii.id_hash(self.id_number),
                "claimed_masked": pii.masked_person(self.name, pii.mask_id(self.id_number))}


def filer_identity(*, name: str, id_number: str, phone: str = "") -> FilerIdentity:
    """Check a filer's name, ID number and phone against the registry (read only). Raises
    ApplicationError only for malformed input (which says nothing about the registry)."""
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ApplicationError(_("Please enter your name as on your ID card."), extra={"field": "name"})
    try:
        number = pii.validate_id_number(id_number)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), extra={"field": "id_number"}) from None
    resident = resident_by_id_number(number)
    on_record = False
    if resident is not None and phone:
        try:
            on_record = resident.phones.filter(phone_hash=pii.phone_hash(pii.validate_phone(phone))).exists()
        except ValidationError:
            on_record = False
    return FilerIdentity(resident=resident, name=name, id_number=number,
                         name_matches=resident is not None and resident.name.strip() == name,
                         phone_on_record=on_record)


@dataclass(frozen=True)
class VerifiedIdentity:
    # The registry's record for the ID number typed, or None: never created from what was typed.
    resident_id: int | None
    phone_encrypted: str
    # True only when the name matches the registry and the SMS-verified phone is already one of the
    # resident's phones on record. Otherwise the filer has shown a name and an ID number, which
    # others can know: the resident's popups are not shown to them and their phone is never added.
    confirmed: bool
    name_encrypted: str
    id_encrypted: str


def identity_code_verify(*, token: str, code: str) -> VerifiedIdentity:
    """Check the code (5 tries). Single-use. Reads the registry, never writes it.

    Whatever the registry holds for the ID number (nothing, another name, the same name), the
    filer goes on to the same next step: an unknown ID number and a wrong name are not told apart,
    and nobody is locked out by what an earlier filer typed. The verified phone is never attached
    to the resident: it stays the appeal's contact phone (encrypted, in the draft).
    """
    key = f"appeals:code:{token}"
    entry = cache.get(key)
    if entry is None:
        raise ApplicationError(_("This code has expired. Please ask for a new one."))
    if entry["attempts"] >= 5:
        cache.delete(key)
        raise ApplicationError(_("Too many wrong codes. Please ask for a new one."))
    if not secrets.compare_digest(entry["code_hash"], _code_hash(token, (code or "").strip())):
        entry["attempts"] += 1
        cache.set(key, entry, timeout=settings.APPEALS_CODE_TTL_SECONDS)
        raise ApplicationError(_("That code is not right. Please check the SMS and try again."))
    cache.delete(key)
    try:
        name, number, mobile = (pii.decrypt(entry[k]) for k in ("name", "id", "phone"))
    except pii.UndecryptableError:  # sealed under a key rotated away since: start again, no 500
        raise ApplicationError(_("This code has expired. Please ask for a new one.")) from None
    identity = filer_identity(name=name, id_number=number, phone=mobile)
    # Sealed again under the newest key (the cache entry's own tokens may predate a rotation).
    return VerifiedIdentity(resident_id=identity.resident.pk if identity.resident else None,
                            phone_encrypted=pii.encrypt(mobile), confirmed=identity.confirmed,
                            name_encrypted=pii.encrypt(name), id_encrypted=pii.encrypt(number))


# --- Evidence --------------------------------------------------------------------------------

def evidence_room_check(*, count: int, appeal: Appeal | None = None, draft_key: str = "") -> None:
    """Refuse, before any picture is decoded, one request carrying more pictures than the appeal
    (or form draft) has room for. Each picture costs up to ~1-2 s of CPU to clean and a repeat is
    only found after cleaning: 30 copies of one picture in a request were 30 decodes."""
    owned = AppealEvidence.objects.filter(appeal=appeal) if appeal else AppealEvidence.objects.filter(
        appeal__isnull=True, draft_key=draft_key)
    room = max(settings.APPEALS_EVIDENCE_MAX_FILES - owned.count(), 0)
    if count > room:
        raise EvidenceRejected(
            _("You sent %(count)d pictures; an appeal can hold at most %(n)d, and there is room for "
              "%(room)d more. Please choose fewer.")
            % {"count": count, "n": settings.APPEALS_EVIDENCE_MAX_FILES, "room": room})


def _lock_evidence_owner(*, appeal: Appeal | None, draft_key: str) -> None:
    """Serialise the pictures of one appeal or form draft so the limit holds with uploads in
    flight at once: the appeal's row, or (a draft has no row of its own: it lives in the
    resident's session) a transaction lock on its key, as filing does for an ID number."""
    if appeal is not None:
        Appeal.objects.select_for_update(no_key=True).filter(pk=appeal.pk).first()
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"evidence-draft:{draft_key}"])


def _over_limit() -> EvidenceRejected:
    return EvidenceRejected(_("An appeal can hold at most %(n)d pictures.") % {"n": settings.APPEALS_EVIDENCE_MAX_FILES})


def evidence_store(*, upload=None, image: CleanImage | None = None, appeal: Appeal | None = None,
                   draft_key: str = "", user: User | None = None) -> AppealEvidence:
    """Validate, strip and store one screenshot for an appeal or a form draft (max 9 each).

    Race-free: the picture is cleaned (the slow part) without a lock, then counted, compared and
    written under the owner's lock (`_lock_evidence_owner`), so two uploads at once to a draft
    holding 8 pictures store one and refuse the other. Raises EvidenceRejected (an
    ApplicationError) with a clear message; an identical picture uploaded twice is stored once.
    A caller that must lock the appeal (or its task) first passes the picture already cleaned
    (`image`, from clean_image before taking any lock): cleaning takes up to 1-2 s of CPU a
    picture, and staff acting on the appeal meanwhile would wait on the lock (5 s, then a 503).
    """
    if appeal is None and not draft_key:
        raise ValueError("evidence needs an appeal or a draft key")

    def owned():
        return AppealEvidence.objects.filter(appeal=appeal) if appeal else AppealEvidence.objects.filter(
            appeal__isnull=True, draft_key=draft_key)

    if image is None:
        if owned().count() >= settings.APPEALS_EVIDENCE_MAX_FILES:  # full already: refuse before decoding
            raise _over_limit()
        image = clean_image(upload)
    with transaction.atomic():
        _lock_evidence_owner(appeal=appeal, draft_key=draft_key)
        same = owned().filter(sha256=image.sha256).first()
        if same is not None:
            return same
        if owned().count() >= settings.APPEALS_EVIDENCE_MAX_FILES:
            raise _over_limit()
        evidence = AppealEvidence(
            appeal=appeal, draft_key=draft_key if appeal is None else "", content_type=image.content_type,
            width=image.width, height=image.height, size_bytes=len(image.data), sha256=image.sha256,
            uploaded_by=user if user is not None and user.is_authenticated else None,
        )
        try:
            evidence.file.save(f"e.{image.extension}", ContentFile(image.data), save=False)
            evidence.thumbnail.save("t.jpg", ContentFile(image.thumbnail), save=False)
        except storage_errors() as exc:
            # Disk full, read-only, permission denied, storage unreachable: keep nothing half-written
            # and say so; the caller's draft (session, other pictures) is untouched.
            _discard_files(evidence)
            logger.error("evidence storage refused a picture: %s (errno %s)", type(exc).__name__,
                         getattr(exc, "errno", None) or "-")
            raise EvidenceStorageUnavailable(storage_failed_message()) from None
        try:
            evidence.save()
        except BaseException:
            _discard_files(evidence)  # no row points at them
            raise
    return evidence


def _discard_files(evidence: AppealEvidence) -> None:
    """Remove whatever of a picture reached storage (best effort: the storage may be failing)."""
    for stored in (evidence.file, evidence.thumbnail):
        if stored.name:
            try:
                stored.storage.delete(stored.name)
            except storage_errors():
                logger.warning("evidence storage: a partly stored picture could not be removed")


def appeal_evidence_add(*, appeal: Appeal, upload, actor: User) -> AppealEvidence:
    """Staff attach a screenshot (e.g. sent by the resident another way); written to the history.
    The picture is cleaned before the appeal is locked (evidence_store)."""
    _require_handler(actor)
    evidence_room_check(count=1, appeal=appeal)  # full already: refuse before decoding
    image = clean_image(upload)
    with transaction.atomic():
        appeal = _locked(appeal)
        evidence = evidence_store(image=image, appeal=appeal, user=actor)
        touch(appeal)  # a decision form opened before this evidence is stale
        appeal_event(appeal=appeal, kind=AppealEvent.Kind.EVIDENCE_ADDED, actor=actor,
                     data={"evidence": evidence.pk})
    return evidence


def evidence_discard(*, evidence: AppealEvidence) -> None:
    """Remove a draft picture (before filing); filed evidence is never deleted."""
    if evidence.appeal_id is not None:
        raise ApplicationError(_("Evidence of a filed appeal cannot be removed."))
    evidence.file.delete(save=False)
    evidence.thumbnail.delete(save=False)
    evidence.delete()


# --- Filing ----------------------------------------------------------------------------------

def _popup_type(value) -> int | None:
    """A claimed popup number: None, or one of PopupType (1–5); anything else is refused."""
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number not in PopupType.values:
        raise ApplicationError(_("The popup number must be between %(low)d and %(high)d.")
                               % {"low": min(PopupType.values), "high": max(PopupType.values)},
                               extra={"field": "popup_type"})
    return number


def _sole_open_popup(resident: Resident, popup_type: int) -> PopupCase | None:
    """The resident's open popup of this type, if there is exactly one (else nobody can tell which)."""
    popups = resident_open_popups(resident, popup_type=popup_type)
    return popups[0] if len(popups) == 1 else None


def _open_appeal_for(resident: Resident | None, popup: PopupCase | None, popup_type: int | None, *,
                     unconfirmed: tuple[str, str, User | None] | None = None) -> Appeal | None:
    """The open appeal a new filing folds into, locked; None to open a new one.

    `unconfirmed` = (claimed ID hash, contact phone hash, Open311 client or None) for a filer who
    is not confirmed: such a filer only ever adds to their own earlier filing (same ID number as
    given, same phone; for an Open311 client, one it filed itself). Folding into the resident's
    appeals would hand them its reference and history.
    """
    open_qs = Appeal.objects.select_for_update(no_key=True).filter(status__in=Appeal.OPEN_STATUSES,
                                                                   merged_into__isnull=True)
    if unconfirmed is not None:
        claimed_hash, phone_hash, client = unconfirmed
        if not phone_hash:
            return None
        qs = open_qs.filter(claimed_id_hash=claimed_hash, filer_unconfirmed=True, contact_phone_hash=phone_hash,
                            popup_type_claimed=popup_type)
        if client is not None:
            qs = qs.filter(created_by=client, channel=Appeal.Channel.OPEN311)
        return qs.first()
    qs = open_qs.filter(resident=resident)
    unlisted = qs.filter(popup__isnull=True, popup_type_claimed=popup_type, filer_unconfirmed=False)
    if popup is not None:
        # The appeal on this popup; else one filed for "a popup you don't show" with its number,
        # before the popup reached our records or was named (the caller links it).
        return qs.filter(popup=popup).first() or unlisted.first()
    return unlisted.first()


def _lock_filing(resident: Resident | None, claimed_id_hash: str) -> None:
    """Serialise filings for one person so two simultaneous submissions cannot both open an
    appeal: the resident row when there is one, else a transaction lock on the ID number's hash.
    FOR NO KEY UPDATE, as every lock that serialises work on a row others reference: it still
    excludes another filing, but not another transaction's insert that references the resident
    (an SMS, an event), which waiting on it while holding the appeal would deadlock."""
    if resident is not None:
        Resident.objects.select_for_update(no_key=True).filter(pk=resident.pk).first()
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"appeal-file:{claimed_id_hash}"])


@transaction.atomic
def appeal_file(
    *, resident: Resident | None, category: str, popup: PopupCase | None = None,
    popup_type_claimed: int | None = None,
    community: Community | None = None, address_text: str = "", description: str = "",
    contact_phone: str = "", channel: str = Appeal.Channel.ONLINE, draft_key: str = "",
    actor: User | None = None, currently_outside_city: bool = False, outside_since: dt.date | None = None,
    wishes_to_return: bool = False, filer_unconfirmed: bool = False, identity: FilerIdentity | None = None,
) -> tuple[Appeal, bool]:
    """File an appeal, or fold it into the resident's open appeal on the same popup.

    Returns (appeal, folded). Folding counts the repeat, keeps the new description and evidence
    as an event, and raises the priority if the new category is more urgent. Locks the resident
    row (or the ID number's hash) so two simultaneous submissions cannot both open an appeal.

    Every channel: with no popup chosen but a popup number claimed, the appeal is linked to the
    resident's open popup of that number when there is exactly one, and then folds as above.

    `identity`: the name and ID number as the filer gave them, stored on the appeal (the
    registry is never written from them). `filer_unconfirmed`: the filer is not proven to be the
    resident (identity.confirmed is false, or no registry record: `resident` None). Such a filing
    names no popup of the record and folds only into the same filer's own open appeal.
    """
    if resident is None:
        if identity is None:
            raise ValueError("an appeal needs a resident or the identity the filer gave")
        filer_unconfirmed = True
    if category not in Appeal.Category.values:
        raise ApplicationError(_("Please choose a category."), extra={"field": "category"})
    if category == Appeal.Category.STRANDED:
        problem = stranded_problem(outside_since)
        if problem:
            raise ApplicationError(problem, extra={"field": "outside_since"})
        # The category says it: outside the city, wishing to return (what the relief job selects).
        currently_outside_city = wishes_to_return = True
    popup_type_claimed = _popup_type(popup_type_claimed)
    claimed = identity.claimed_fields() if identity is not None else {
        "claimed_id_hash": resident.id_hash, "claimed_masked": resident.masked}
    _lock_filing(resident, claimed["claimed_id_hash"])
    linked = "chosen" if popup is not None else ""
    if popup is None and popup_type_claimed is not None and not filer_unconfirmed:
        popup = _sole_open_popup(resident, popup_type_claimed)
        linked = "by_type" if popup is not None else ""
    if popup is not None:
        if filer_unconfirmed or popup.resident_id != resident.pk or not popup.is_open:
            raise ApplicationError(_("That popup is not one of your active popups."))
        popup_type_claimed = popup.popup_type
    phone_fields = {}
    if contact_phone:
        try:
            mobile = pii.validate_phone(contact_phone)
        except ValidationError as exc:
            raise ApplicationError(" ".join(exc.messages), extra={"field": "phone"}) from None
        phone_fields = {"contact_phone_encrypted": pii.encrypt(mobile), "contact_phone_hash": pii.phone_hash(mobile),
                        "contact_phone_masked": pii.mask_phone(mobile)}
    priority = priority_for(category)
    unconfirmed_key = None
    if filer_unconfirmed:
        client = actor if channel == Appeal.Channel.OPEN311 else None
        unconfirmed_key = (claimed["claimed_id_hash"], phone_fields.get("contact_phone_hash", ""), client)
    # A fold changes an open appeal (popup, priority, evidence) and so its community task: the
    # tasks of the person's open appeals are locked first (the lock order of every decision).
    person = Q(claimed_id_hash=claimed["claimed_id_hash"]) | (Q(resident=resident) if resident is not None else Q())
    _lock_clearance_first(list(Appeal.objects.filter(person, status__in=Appeal.OPEN_STATUSES).values_list("pk", flat=True)),
                          [popup.pk] if popup is not None else [])
    existing = _open_appeal_for(resident, popup, popup_type_claimed, unconfirmed=unconfirmed_key)
    if existing is not None:
        existing.repeat_count += 1
        changed = ["repeat_count", "updated_at"]
        if priority < existing.priority:
            existing.priority = priority
            existing.sla_due_at = min(existing.sla_due_at or sla_due(priority, existing.created_at),
                                      sla_due(priority, clock.now()))
            changed += ["priority", "sla_due_at"]
        if phone_fields and not existing.contact_phone_hash:
            for name, value in phone_fields.items():
                setattr(existing, name, value)
            changed += list(phone_fields)
        if popup is not None and existing.popup_id is None:
            _link_popup(existing, popup, actor=actor, how=linked)
            changed += ["popup", "popup_type_claimed"]
        if outside_since and not existing.outside_since:
            # A repeat that says since when the resident is outside feeds the relief job too.
            existing.currently_outside_city = currently_outside_city
            existing.outside_since = outside_since
            existing.wishes_to_return = existing.wishes_to_return or wishes_to_return
            changed += ["currently_outside_city", "outside_since", "wishes_to_return"]
        existing.save(update_fields=changed)
        moved = _attach_drafts(existing, draft_key)
        appeal_event(appeal=existing, kind=AppealEvent.Kind.REPEAT, actor=actor,
                     actor_label="" if actor else RESIDENT_LABEL, note=description[:4000],
                     data={"category": category, "channel": channel, "evidence_added": moved,
                           "repeat_count": existing.repeat_count})
        if "popup" in changed:
            _follow(existing, "popup", actor=actor, strict=False)
        if "priority" in changed:
            _follow(existing, "priority", actor=actor)
        if moved:
            _evidence_arrived(existing, count=moved)
        notices.notify_filed(existing, folded=True)
        return existing, True
    now = clock.now()
    appeal = _create_with_reference(
        resident=resident, popup=popup, popup_type_claimed=popup_type_claimed,
        category=category, priority=priority, channel=channel, community=community,
        address_text=address_text[:200], description=description, sla_due_at=sla_due(priority, now),
        currently_outside_city=currently_outside_city, outside_since=outside_since,
        wishes_to_return=wishes_to_return, filer_unconfirmed=filer_unconfirmed, created_by=actor, created_at=now,
        # online: the language of the page the resident filed on; else the site's
        language=translation.get_language() if channel == Appeal.Channel.ONLINE else settings.LANGUAGE_CODE,
        **phone_fields, **claimed,
    )
    moved = _attach_drafts(appeal, draft_key)
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.FILED, actor=actor,
                 actor_label="" if actor else RESIDENT_LABEL,
                 data={"channel": channel, "category": category, "evidence": moved,
                       "filer_unconfirmed": filer_unconfirmed, "popup_linked": linked})
    notices.notify_filed(appeal, folded=False)
    return appeal, False


def _link_popup(appeal: Appeal, popup: PopupCase, *, actor: User | None, how: str) -> None:
    """Set the appeal's popup (caller locked the resident row and saves the appeal) with an
    internal history event: the status page must not tell a filer that a popup exists."""
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.POPUP_LINKED, actor=actor,
                 actor_label="" if actor else "system", public=False,
                 data={"popup": popup.pk, "popup_type": popup.popup_type, "from_popup": appeal.popup_id,
                       "claimed": appeal.popup_type_claimed, "how": how})
    appeal.popup = popup
    appeal.popup_type_claimed = popup.popup_type


def _attach_drafts(appeal: Appeal, draft_key: str) -> int:
    if not draft_key:
        return 0
    room = settings.APPEALS_EVIDENCE_MAX_FILES - appeal.evidence.count()
    known = set(appeal.evidence.values_list("sha256", flat=True))
    drafts = AppealEvidence.objects.filter(appeal__isnull=True, draft_key=draft_key).exclude(sha256__in=known)
    ids = list(drafts.order_by("id").values_list("id", flat=True)[: max(room, 0)])
    # Pictures over the limit stay as drafts rather than being silently deleted.
    return AppealEvidence.objects.filter(pk__in=ids).update(appeal=appeal, draft_key="")


class IdentityCheckNeeded(ApplicationError):
    """The name typed does not match the registry for the ID number, or the number is not
    registered (one message for both; the registered name is never shown). The operator checks
    with the caller and acknowledges before the appeal is filed as an unconfirmed filer's."""


def appeal_file_by_phone(
    *, actor: User, name: str, id_number: str, phone: str, category: str, popup: PopupCase | None = None,
    popup_type_claimed: int | None = None, community: Community | None = None, address_text: str = "",
    description: str = "", call_outcome: str = AppealContact.Outcome.REACHED, call_note: str = "",
    currently_outside_city: bool = False, outside_since: dt.date | None = None, wishes_to_return: bool = False,
    identity_acknowledged: bool = False,
) -> tuple[Appeal, bool]:
    """An appeal taken on the 12345 line: same model, channel phone, with the call logged.

    The same rules as online: the caller is the resident only when the name matches the registry
    and the call-back phone is one of the resident's phones on record; otherwise the appeal is an
    unconfirmed filer's (no popup of the record linked, folds only into the same caller's own).
    A name that does not match (or an unknown ID number) raises IdentityCheckNeeded until the
    operator acknowledges it. The registry is never written; the look-up is audited either way.
    """
    _require_handler(actor)
    identity = filer_identity(name=name, id_number=id_number, phone=phone)
    access_log(actor=actor, resident=identity.resident, action=PersonalDataAccess.Action.LOOKUP,
               context="appeals:phone-entry")
    if not identity.name_matches and not identity_acknowledged:
        raise IdentityCheckNeeded(
            _("The name does not match the registry for this ID number, or the ID number is not registered. "
              "Check both with the caller. To file it anyway as an unconfirmed filer's appeal, tick "
              "“I have checked with the caller”."), extra={"field": "identity_acknowledged"})
    with transaction.atomic():
        appeal, folded = appeal_file(
            resident=identity.resident, category=category, popup=popup if identity.confirmed else None,
            popup_type_claimed=popup_type_claimed, community=community, address_text=address_text,
            description=description, contact_phone=phone, channel=Appeal.Channel.PHONE, actor=actor,
            currently_outside_city=currently_outside_city, outside_since=outside_since,
            wishes_to_return=wishes_to_return, filer_unconfirmed=not identity.confirmed, identity=identity,
        )
        appeal_contact_log(appeal=appeal, actor=actor, direction=AppealContact.Direction.INBOUND,
                           outcome=call_outcome, note=call_note)
    return appeal, folded


@transaction.atomic
def appeal_file_open311(
    *, client: User, name: str, id_number: str, phone: str, category: str, popup_type_claimed: int | None = None,
    address_text: str = "", description: str = "", outside_since: dt.date | None = None,
) -> tuple[Appeal, bool]:
    """An appeal from an Open311 client (api_key checked by the caller). The community is the
    finder's best match for the address; an operator confirms it on the ticket.

    A client proves nothing about the person: every Open311 filing is an unconfirmed filer's, so
    an unknown ID number, a wrong name and a right one get the same answer (a new reference), and
    it folds only into an open request the same client filed with the same ID number and phone.
    The registry is never written; the phone is the appeal's contact phone only."""
    if not (name or "").strip():
        raise ApplicationError(_("first_name and last_name are required."))
    identity = filer_identity(name=name, id_number=id_number)
    matches = community_find(address_text, limit=1) if address_text else []
    return appeal_file(
        resident=identity.resident, category=category, popup_type_claimed=popup_type_claimed,
        community=matches[0].community if matches else None, address_text=address_text, description=description,
        contact_phone=phone, channel=Appeal.Channel.OPEN311, actor=client,
        currently_outside_city=outside_since is not None, outside_since=outside_since,
        filer_unconfirmed=True, identity=identity,
    )


@transaction.atomic
def appeal_confirm_filer(*, appeal: Appeal, actor: User, reason: str, seen: str | None = None) -> Appeal:
    """An operator who has checked the caller (e.g. called back a phone on record, or seen the ID
    card) confirms the filer. The name as given must match the registry's record for the ID
    number; the registry is never renamed from an appeal. When the ID number is not registered,
    the checked person is registered here (name and ID as given, no phone), by a person with the
    right to, with the reason in the history. Audited (registry access log + internal event)."""
    _require_handler(actor)
    if not (reason or "").strip():
        raise ApplicationError(_("Please say how you checked who the filer is."), extra={"field": "reason"})
    appeal = _locked(appeal, seen)
    if not appeal.filer_unconfirmed:
        return appeal
    if not appeal.is_open:
        raise ApplicationError(_("This appeal is closed."))
    if not appeal.claimed_id_encrypted or not appeal.claimed_name_encrypted:
        raise ApplicationError(_("This appeal holds no name and ID number as given; link it through a new filing."))
    name, number = pii.decrypt(appeal.claimed_name_encrypted), pii.decrypt(appeal.claimed_id_encrypted)
    resident = resident_by_id_number(number)
    registered = resident is None
    if resident is None:
        resident, _created = resident_get_or_create(name=name, id_number=number)
    elif resident.name.strip() != name.strip():
        raise ApplicationError(_("The name given does not match the registry for this ID number. The registry is not "
                                 "changed from an appeal: ask the filer to file again with the name on their ID card."))
    access_log(actor=actor, resident=resident, action=PersonalDataAccess.Action.LOOKUP,
               context=f"appeal:{appeal.pk}:confirm-filer", reason=reason)
    appeal.resident = resident
    appeal.filer_unconfirmed = False
    appeal.save(update_fields=["resident", "filer_unconfirmed", "updated_at"])
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.FILER_CONFIRMED, actor=actor, note=reason, public=False,
                 data={"registered": registered})
    return appeal


# --- Operator actions ------------------------------------------------------------------------

@transaction.atomic
def appeal_assign(*, appeal: Appeal, assignee: User, actor: User, seen: str | None = None) -> Appeal:
    """Give the appeal to an operator (to oneself or another); a new appeal becomes in progress."""
    _require_handler(actor)
    if not has_role(assignee, HANDLER_ROLES):
        raise ApplicationError(_("Appeals can only be assigned to hotline operators or supervisors."))
    appeal = _locked(appeal, seen)
    if not appeal.is_open:
        raise ApplicationError(_("This appeal is closed."))
    previous = appeal.assigned_to_id
    appeal.assigned_to = assignee
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.ASSIGNED, actor=actor, public=False,
                 data={"from": previous, "to": assignee.pk, "to_label": assignee.get_username()})
    if appeal.status == Appeal.Status.NEW:
        _set_status(appeal, Appeal.Status.IN_PROGRESS, actor=actor)
    appeal.save(update_fields=["assigned_to", "status", "updated_at"])
    return appeal


@transaction.atomic
def appeal_set_priority(*, appeal: Appeal, priority: int, actor: User, reason: str = "",
                        seen: str | None = None) -> Appeal:
    """Change the priority; the SLA due time is recomputed from when the appeal was filed."""
    _require_handler(actor)
    if int(priority) not in Appeal.Priority.values:
        raise ApplicationError(_("Unknown priority."))
    _lock_clearance_first([appeal.pk])
    appeal = _locked(appeal, seen)
    if not appeal.is_open:
        raise ApplicationError(_("This appeal is closed."))
    old = appeal.priority
    appeal.priority = int(priority)
    appeal.sla_due_at = sla_due(appeal.priority, appeal.created_at)
    if appeal.sla_breached_at and appeal.sla_due_at > clock.now():
        appeal.sla_breached_at = None
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.PRIORITY_SET, actor=actor, note=reason, public=False,
                 data={"from": old, "to": appeal.priority})
    appeal.save(update_fields=["priority", "sla_due_at", "sla_breached_at", "updated_at"])
    _follow(appeal, "priority", actor=actor, reason=reason)
    return appeal


@transaction.atomic
def appeal_merge(*, duplicate: Appeal, into: Appeal, actor: User, seen: str | None = None) -> Appeal:
    """Fold a duplicate appeal of the same resident into another: evidence moves, repeats add up,
    the more urgent priority wins and the SLA due time follows it (never later), the duplicate
    closes with outcome "merged". The duplicate's open community task goes on for `into` when
    that one has none (`into` is then with that community; the task follows `into`'s popup as a
    link would), else it is withdrawn naming `into`'s task (clearance_follow_appeal, "merged").
    Locks `into`'s resident (as a popup link does), both appeals' open tasks (and those of `into`'s
    popup), then both rows, in key order."""
    _require_handler(actor)
    if duplicate.pk == into.pk:
        raise ApplicationError(_("An appeal cannot be merged into itself."))
    first, second = sorted([duplicate.pk, into.pk])
    if into.resident_id is not None:  # `into` may take the popup of the task it takes over (as a link does)
        Resident.objects.select_for_update(no_key=True).filter(pk=into.resident_id).first()
    # the open task of the popup `into` is on too: a task handed over follows that popup
    _lock_clearance_first([first, second], [into.popup_id] if into.popup_id else [])
    rows = {a.pk: a for a in Appeal.objects.select_for_update(no_key=True).filter(pk__in=[first, second])
            .order_by("pk")}
    duplicate, into = rows[duplicate.pk], rows[into.pk]
    check_seen(duplicate, seen)  # the form is on the duplicate's page
    if duplicate.resident_id != into.resident_id or (
            duplicate.resident_id is None and duplicate.claimed_id_hash != into.claimed_id_hash):
        raise ApplicationError(_("Only appeals of the same resident can be merged."))
    if not duplicate.is_open or not into.is_open:
        raise ApplicationError(_("Both appeals must be open to merge them."))
    room = settings.APPEALS_EVIDENCE_MAX_FILES - into.evidence.count()
    moving = list(duplicate.evidence.order_by("id").values_list("id", flat=True)[: max(room, 0)])
    AppealEvidence.objects.filter(pk__in=moving).update(appeal=into)
    into.repeat_count += 1 + duplicate.repeat_count
    changed = ["repeat_count", "updated_at"]
    old_priority = into.priority
    if duplicate.priority < into.priority:
        # As folding does: the due time follows the more urgent priority, never later than it was
        # nor than the duplicate's own (its urgency was known since it was filed).
        into.priority = duplicate.priority
        due = [into.sla_due_at or sla_due(into.priority, into.created_at), sla_due(into.priority, clock.now())]
        if duplicate.sla_due_at:
            due.append(duplicate.sla_due_at)
        into.sla_due_at = min(due)
        changed += ["priority", "sla_due_at"]
    into.save(update_fields=changed)
    if "priority" in changed:
        _follow(into, "priority", actor=actor)
    appeal_event(appeal=into, kind=AppealEvent.Kind.MERGED_IN, actor=actor,
                 data={"from": duplicate.reference, "evidence_moved": len(moving),
                       "priority": {"from": old_priority, "to": into.priority},
                       "sla_due_at": into.sla_due_at.isoformat() if into.sla_due_at else None})
    duplicate.merged_into = into
    _set_status(duplicate, Appeal.Status.CLOSED, actor=actor, reason=_("Duplicate of %(ref)s") % {"ref": into.reference})
    duplicate.closed_at = clock.now()
    duplicate.outcome = "merged"
    duplicate.close_reason = _("Merged into %(ref)s") % {"ref": into.reference}
    # The community's work on the duplicate goes on for `into` when that one has no task of its own
    # (else the duplicate's is withdrawn, naming the task that goes on).
    task = _follow(duplicate, "merged", actor=actor, reason=duplicate.close_reason, into=into)
    duplicate.save(update_fields=["merged_into", "status", "closed_at", "outcome", "close_reason", "updated_at"])
    appeal_event(appeal=duplicate, kind=AppealEvent.Kind.MERGED, actor=actor, data={"into": into.reference})
    if task is not None and task.appeal_id == into.pk:
        _with_the_task_community(into, task, actor=actor, duplicate=duplicate)
        if into.popup_id and into.popup_id != task.popup_id:  # as linking `into` to its popup would
            _follow(into, "popup", actor=actor, strict=False)
        elif into.popup_id is None and task.popup_id is not None and task.popup.is_open:
            # `into` named no popup: it is now about the one its task works on (the duplicate's),
            # so its ticket, lists and the engine's lift find it as they find a linked appeal
            _link_popup(into, task.popup, actor=actor, how="merged")
            into.save(update_fields=["popup", "popup_type_claimed", "updated_at"])
    notices.notify_merged(duplicate, into)
    return into


def _with_the_task_community(appeal: Appeal, task, *, actor: User, duplicate: Appeal) -> None:
    """`appeal` took over a merged duplicate's community task: it is with that community, as
    routing it there would leave it ("with the community"; still waiting while its resident is
    asked for evidence, and back with the community when it arrives). No SMS: the merge's says
    which reference to follow."""
    community = task.community
    if appeal.routed_community_id != community.pk or appeal.routed_at is None:
        appeal.routed_community, appeal.routed_at = community, clock.now()
    reason = _("Took over the community task %(task)s of merged appeal %(ref)s.") % {
        "task": task.reference, "ref": duplicate.reference}
    if appeal.status != Appeal.Status.WAITING_RESIDENT:
        _set_status(appeal, Appeal.Status.ROUTED, actor=actor, reason=reason)
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.ROUTED, actor=actor, note=reason,
                 data={"community": community.pk, "community_name": str(community), "task": task.pk,
                       "merged_from": duplicate.reference})
    appeal.save(update_fields=["routed_community", "routed_at", "status", "updated_at"])


@transaction.atomic
def appeal_link_popup(*, appeal: Appeal, popup: PopupCase, actor: User, seen: str | None = None) -> Appeal:
    """Link an appeal to one of its resident's open popups (an operator fixing an unlinked ticket),
    with an internal history event. Idempotent for the popup it already holds. Refused when another
    open appeal holds that popup, or another appeal's community task works on it: merge into that one
    instead. The community's open task follows (clearance_follow_appeal, "popup"). Locks the
    resident row, the appeal's and the popup's open tasks, then the appeal.
    """
    _require_handler(actor)
    Resident.objects.select_for_update(no_key=True).filter(pk=appeal.resident_id).first()
    _lock_clearance_first([appeal.pk], [popup.pk])
    appeal = _locked(appeal, seen)
    if not appeal.is_open:
        raise ApplicationError(_("This appeal is closed."))
    if popup.resident_id != appeal.resident_id or not popup.is_open:
        raise ApplicationError(_("That popup is not one of this resident's open popups."))
    if appeal.popup_id == popup.pk:
        return appeal
    holder = (Appeal.objects.filter(popup=popup, status__in=Appeal.OPEN_STATUSES, merged_into__isnull=True)
              .exclude(pk=appeal.pk).first())
    if holder is not None:
        raise ApplicationError(
            _("Appeal %(ref)s is already open on this popup. Merge this appeal into %(ref)s instead.")
            % {"ref": holder.reference}, extra={"appeal": holder.reference})
    _link_popup(appeal, popup, actor=actor, how="operator")
    appeal.save(update_fields=["popup", "popup_type_claimed", "updated_at"])
    _follow(appeal, "popup", actor=actor)
    return appeal


def _link_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def appeal_request_evidence(*, appeal: Appeal, actor: User, message: str = "",
                            seen: str | None = None) -> AppealLink:
    """Ask the resident for more evidence: an expiring, single-use link by SMS; status waiting.
    The community's open task for the appeal, if any, is put on hold with it until the evidence
    arrives (flagged on both consoles, its SLA clock stopped). Locks the task, then the appeal."""
    _require_handler(actor)
    _lock_clearance_first([appeal.pk])
    appeal = _locked(appeal, seen)
    if not appeal.is_open:
        raise ApplicationError(_("This appeal is closed."))
    phone = pii.decrypt(appeal.contact_phone_encrypted) if appeal.contact_phone_encrypted else ""
    if not phone and appeal.resident_id:
        primary = appeal.resident.phones.first()
        phone = primary.reveal_phone() if primary else ""
    if not phone:
        raise ApplicationError(_("This appeal has no phone number to send the request to."))
    token = secrets.token_urlsafe(32)
    link = AppealLink.objects.create(
        appeal=appeal, purpose="evidence", token_hash=_link_hash(token),
        expires_at=clock.now() + dt.timedelta(hours=settings.APPEALS_LINK_TTL_HOURS),
    )
    url = settings.OFFICIAL_SITE_URL.rstrip("/") + reverse("appeals:evidence-link", kwargs={"token": token})
    notices.notify_waiting(appeal, link=link, url=url, message=message)
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.EVIDENCE_REQUESTED, actor=actor, note=message,
                 data={"link": link.pk, "expires_at": link.expires_at.isoformat()})
    _set_status(appeal, Appeal.Status.WAITING_RESIDENT, actor=actor)
    appeal.save(update_fields=["status", "updated_at"])
    _follow(appeal, "waiting", actor=actor, reason=message,
            data={"link": link.pk, "expires_at": link.expires_at.isoformat()})
    return link


def appeal_link_get(token: str) -> AppealLink:
    """The live link for a token, or ApplicationError (expired, used or unknown: same message)."""
    link = AppealLink.objects.select_related("appeal").filter(token_hash=_link_hash(token or "")).first()
    if link is None or not _link_live(link):
        raise _link_invalid()
    return link


def _link_live(link: AppealLink) -> bool:
    return link.used_at is None and link.expires_at > clock.now() and link.appeal.is_open


def _link_invalid() -> ApplicationError:
    return ApplicationError(_("This link is no longer valid. Official links work once and expire; "
                              "you can check your appeal on the status page."))


def appeal_link_submit(*, token: str, uploads: list, note: str = "") -> Appeal:
    """Resident answers an evidence request: pictures stored, link used up, the appeal back with
    whoever had it (the hotline, or the community, whose task resumes). The link is checked and
    the pictures cleaned (seconds of CPU for nine) before anything is locked; then it locks the
    appeal's open tasks, the link, then the appeal, and checks the link again."""
    link = appeal_link_get(token)
    evidence_room_check(count=len(uploads), appeal=link.appeal)
    images: list[CleanImage] = []
    for index, upload in enumerate(uploads, start=1):
        try:
            images.append(clean_image(upload))
        except EvidenceRejected as exc:
            raise _picture_refused(index, exc) from None
    with transaction.atomic():
        return _link_submit_locked(link, images, note)


def _picture_refused(index: int, exc: EvidenceRejected) -> EvidenceRejected:
    # Say which picture, by position (its file name may hold personal data), as the form does.
    return EvidenceRejected(_("Picture %(n)d: %(message)s") % {"n": index, "message": exc.message})


def _link_submit_locked(link: AppealLink, images: list[CleanImage], note: str) -> Appeal:
    _lock_clearance_first([link.appeal_id])
    link = AppealLink.objects.select_for_update().get(pk=link.pk)
    if link.used_at is not None:
        raise ApplicationError(_("This link has already been used."))
    appeal = _locked(link.appeal)
    link.appeal = appeal
    if not _link_live(link):  # expired, or the appeal closed, while the pictures were cleaned
        raise _link_invalid()
    evidence_room_check(count=len(images), appeal=appeal)
    stored: list[AppealEvidence] = []
    for index, image in enumerate(images, start=1):
        try:
            stored.append(evidence_store(image=image, appeal=appeal))
        except BaseException as exc:
            # The rows roll back with the transaction; remove the files written before this one.
            for evidence in stored:
                _discard_files(evidence)
            if isinstance(exc, EvidenceRejected):
                raise _picture_refused(index, exc) from None
            raise
    link.used_at = clock.now()
    link.save(update_fields=["used_at"])
    touch(appeal)  # an operator's decision form opened before this evidence is stale
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.EVIDENCE_ADDED, actor_label=RESIDENT_LABEL, note=note[:4000],
                 data={"count": len(stored), "link": link.pk})
    _evidence_arrived(appeal, count=len(stored))
    return appeal


def _evidence_arrived(appeal: Appeal, *, count: int) -> None:
    """The resident sent what the hotline asked for (appeal locked after its open tasks): an
    appeal waiting for it goes back to whoever had it, the community (its task resumes) or the
    hotline."""
    if appeal.status != Appeal.Status.WAITING_RESIDENT:
        return
    # routed_at: it went to a community before it waited, and a community's task ends only with the appeal
    back = Appeal.Status.ROUTED if appeal.routed_at else Appeal.Status.IN_PROGRESS
    _set_status(appeal, back, actor=None, reason=_("The resident sent more evidence."))
    appeal.save(update_fields=["status", "updated_at"])
    _follow(appeal, "evidence", actor=None, data={"evidence": count})


@transaction.atomic
def appeal_route(*, appeal: Appeal, community: Community, actor: User | None, reason: str = "",
                 seen: str | None = None) -> Appeal:
    """Send the appeal to the responsible community (status "with the community").

    An open clearance task moves to that community in the same transaction (new SLA clock, any
    hold lifted); otherwise, on commit, clearance opens its task (`clearance_open_for_appeal`,
    idempotent). Locks the appeal's open tasks, then the appeal.
    """
    if actor is not None:
        _require_handler(actor)
    _lock_clearance_first([appeal.pk])
    appeal = _locked(appeal, seen)
    if not appeal.is_open:
        raise ApplicationError(_("This appeal is closed."))
    if appeal.resident_id is None:
        # The community would act on a registry record: there is none until the filer is checked.
        raise ApplicationError(_("The ID number given is not in the registry. Check who the filer is "
                                 "(confirm the filer) before sending the appeal to a community."))
    appeal.routed_community = community
    appeal.routed_at = clock.now()
    _set_status(appeal, Appeal.Status.ROUTED, actor=actor, reason=reason)
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.ROUTED, actor=actor, note=reason,
                 data={"community": community.pk, "community_name": str(community)})
    appeal.save(update_fields=["routed_community", "routed_at", "status", "updated_at"])
    if not notices.filer_confirmed(appeal):
        # the resident's own SMS comes from clearance, with the community's link in it
        notices.notify_routed(appeal, community)
    # An open task moves now, in this transaction (the first community's decisions are refused
    # from this commit on); a new one is opened by the job below.
    _follow(appeal, "routed", actor=actor, reason=reason)
    from appeals.clearance.tasks import clearance_open_for_appeal

    appeal_id = appeal.pk
    transaction.on_commit(lambda: clearance_open_for_appeal.delay(appeal_id), robust=True)
    return appeal


@transaction.atomic
def appeal_close(*, appeal: Appeal, actor: User | None, reason: str, outcome: str, strict: bool = False,
                 notify: bool = True, seen: str | None = None) -> Appeal:
    """Close with a reason and outcome, and text the filer the outcome and next step (`notify`
    False: the caller texts the decision itself). Idempotent: an already-closed appeal is
    returned unchanged. `strict` (a client program closing through the API, which must learn
    what happened): only the outcomes an operator may choose, and closing a closed appeal is refused.

    One decision stands: the community's open task for the appeal is withdrawn, or goes on for
    the popup without it (clearance_withdraw_for_appeal); "rejected" is refused once the popup
    has been lifted or withdrawn (the resident would be told both). Locks the appeal's open
    tasks, then the appeal, then its popup."""
    if strict and outcome not in OPERATOR_OUTCOMES:
        raise ApplicationError(_("Unknown outcome."), extra={"outcome": list(OPERATOR_OUTCOMES)})
    _lock_clearance_first([appeal.pk])
    appeal = _locked(appeal, seen)
    if appeal.status == Appeal.Status.CLOSED:
        if strict:
            raise ApplicationError(_("This appeal is already closed."),
                                   extra={"status": appeal.status, "outcome": appeal.outcome})
        return appeal
    if not (reason or "").strip():
        raise ApplicationError(_("Please give a reason for closing."))
    if outcome == "rejected" and appeal.popup_id:
        _refuse_rejecting_a_closed_popup(appeal)
    _set_status(appeal, Appeal.Status.CLOSED, actor=actor, reason=reason)
    appeal.closed_at = clock.now()
    appeal.close_reason = reason[:200]
    appeal.outcome = (outcome or "")[:40]
    going_on = _end_clearance(appeal, actor=actor, reason=reason)
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.CLOSED, actor=actor,
                 actor_label="" if actor else "system", note=reason,
                 data={"outcome": appeal.outcome, **_clearance_data(going_on)})
    appeal.save(update_fields=["status", "closed_at", "close_reason", "outcome", "updated_at"])
    if notify:
        notices.notify_closed(appeal, community_goes_on=going_on.community if going_on else None)
    return appeal


def _refuse_rejecting_a_closed_popup(appeal: Appeal) -> None:
    """A "not granted" answer about a popup that has meanwhile been lifted or withdrawn (the
    engine, a lab result, a community) would reach the resident beside the popup's own news."""
    popup = PopupCase.objects.select_for_update(no_key=True).get(pk=appeal.popup_id)
    if popup.is_open:
        return
    raise ApplicationError(
        _("Popup %(n)d was %(state)s on %(when)s, after this page was shown: the resident has been told. Close "
          "the appeal as “%(lifted)s” instead.")
        % {"n": popup.popup_type, "state": popup.get_state_display().lower(),
           "when": timezone.localtime(popup.lifted_at or popup.updated_at).strftime("%Y-%m-%d %H:%M"),
           "lifted": OUTCOME_LABELS["lifted"]},
        extra={"popup_state": popup.state, "field": "outcome"})


def _lock_clearance_first(appeal_ids: list[int], popup_ids: list[int] = ()) -> None:
    """Lock the appeals' open clearance tasks before the appeals. A community decision locks its
    task and then closes the appeal; every hotline change takes them in that same order, so the
    two queue behind each other (the second finds the first's decision) instead of deadlocking."""
    from appeals.clearance.services import lock_appeal_tasks

    lock_appeal_tasks(appeal_ids, popup_ids)


def _follow(appeal: Appeal, change: str, *, actor: User | None, reason: str = "", **details):
    """The one door from an appeal's change to its open clearance task (clearance_follow_appeal:
    the task moves, holds, resumes, takes the popup, is raised or withdrawn with the appeal)."""
    from appeals.clearance.services import clearance_follow_appeal

    return clearance_follow_appeal(appeal=appeal, change=change, actor=actor, reason=reason, **details)


def _end_clearance(appeal: Appeal, *, actor: User | None, reason: str):
    """The hotline closes the appeal: the community's open task for it is withdrawn, or goes on
    for the popup without the appeal. Returns the task that goes on, else None. A community's
    own decision closed its task before closing the appeal: none."""
    return _follow(appeal, "closed", actor=actor, reason=reason)


def _clearance_data(going_on) -> dict:
    return {"clearance_goes_on": going_on.pk} if going_on is not None else {}


@transaction.atomic
def appeal_contact_log(*, appeal: Appeal, actor: User, direction: str, outcome: str, note: str = "",
                       at: dt.datetime | None = None, seen: str | None = None) -> AppealContact:
    """Record one call with the resident in the ticket's call log (and its history). Locks the
    appeal and moves its version, so the same call form sent twice is logged once."""
    _require_handler(actor)
    if direction not in AppealContact.Direction.values or outcome not in AppealContact.Outcome.values:
        raise ApplicationError(_("Please choose the call direction and outcome."))
    appeal = _locked(appeal, seen)
    touch(appeal)
    contact = AppealContact.objects.create(appeal=appeal, operator=actor, direction=direction,
                                           outcome=outcome, note=note, at=at or clock.now())
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.CONTACT, actor=actor, public=False, note=note,
                 data={"contact": contact.pk, "direction": direction, "outcome": outcome})
    return contact


@transaction.atomic
def appeal_reveal(*, appeal: Appeal, actor: User, reason: str) -> dict[str, object]:
    """Show the resident's ID and phones in clear: scoped (selectors.can_reveal_resident: the
    registry's scope, or the appeal routed to one of the worker's communities) and audited
    (registry access log + internal history event). Raises ApplicationError when out of scope."""
    if not (reason or "").strip():
        raise ApplicationError(_("Please say why you need to see the full details."))
    if not can_reveal_resident(actor, appeal):
        raise ApplicationError(_("You can see the full details only of residents of your communities "
                                 "or of appeals sent to one of them."))
    data = resident_reveal_scoped(actor=actor, resident=appeal.resident, reason=reason,
                                  context=f"appeal:{appeal.pk}")
    appeal_event(appeal=appeal, kind=AppealEvent.Kind.REVEALED, actor=actor, note=reason, public=False)
    return data


# --- SLA --------------------------------------------------------------------------------------

def appeal_sla_sweep(*, now: dt.datetime | None = None) -> int:
    """Mark every open appeal past its SLA as breached and escalated, with two history events
    each, in one statement (set-based; a rerun finds nothing new). Returns the number marked.

    The appeal's version (`updated_at`) stays: an escalation changes nothing an operator decides
    on, so a ticket page open meanwhile is not stale (healthkit.concurrency) and its close or
    route goes through instead of being refused as "changed since you opened the page"."""
    now = now or clock.now()
    # Status literals (not a parameter) so the planner can match appeal_sla_unmarked_idx's predicate.
    sql = """
        WITH breached AS (
            UPDATE appeals_appeal SET sla_breached_at = %(now)s, escalated_at = %(now)s
            WHERE status IN ('new', 'in_progress', 'waiting_resident', 'routed')
              AND sla_breached_at IS NULL AND sla_due_at < %(now)s
            RETURNING id, sla_due_at
        ), events AS (
            INSERT INTO appeals_appealevent (appeal_id, kind, actor_label, note, data, public, at)
            SELECT b.id, k.kind, 'sla-sweep', '', jsonb_build_object('due', b.sla_due_at), k.public, %(now)s
            FROM breached b CROSS JOIN (VALUES ('sla_breached', false), ('escalated', false)) AS k(kind, public)
            RETURNING 1
        )
        SELECT count(*) FROM breached
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, {"now": now})
        return cursor.fetchone()[0]


def appeal_unanswered_sweep(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Appeals waiting for their resident's evidence whose link ran out unused go back to whoever
    had them: the community (its task's hold ends, its SLA clock runs again) or the hotline, with
    why in the history. Left waiting, such an appeal sits outside every working queue and its
    community task on hold for good. One transaction per appeal, locks in the order of every
    hotline change (tasks, then the appeal), the state read again under them; at most `limit` a
    run (beat runs it every few minutes); a rerun finds nothing. Returns the number sent back."""
    now = now or clock.now()
    live = AppealLink.objects.filter(appeal=OuterRef("pk"), purpose="evidence", used_at__isnull=True,
                                     expires_at__gt=now)
    waiting = Appeal.objects.filter(status=Appeal.Status.WAITING_RESIDENT).exclude(Exists(live))
    returned = 0
    for pk in list(waiting.order_by("pk").values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            _lock_clearance_first([pk])
            appeal = Appeal.objects.select_for_update(no_key=True).filter(pk=pk).first()
            if appeal is None or not waiting.filter(pk=pk).exists():
                continue  # the evidence arrived, or the appeal moved on, meanwhile
            back = Appeal.Status.ROUTED if appeal.routed_at else Appeal.Status.IN_PROGRESS
            _set_status(appeal, back, actor=None,
                        reason=_("The resident did not send the evidence asked for before the link expired; "
                                 "the appeal goes on with what it has."))
            appeal.save(update_fields=["status", "updated_at"])
            _follow(appeal, "evidence", actor=None, at=now, data={"evidence": 0, "unanswered": True})
            returned += 1
    return returned


def evidence_drafts_purge(*, older_than: dt.timedelta = dt.timedelta(days=2)) -> int:
    """Delete draft pictures never filed (abandoned forms). Bounded batch; beat runs it hourly."""
    old = AppealEvidence.objects.filter(appeal__isnull=True, created_at__lt=clock.now() - older_than)
    count = 0
    for evidence in old.order_by("id")[:500]:
        evidence_discard(evidence=evidence)
        count += 1
    return count
