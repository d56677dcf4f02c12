"""Writes to the registry."""

import datetime as dt
import logging
import re

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from communities import pii
from communities.middleware import current_client_ip
from communities.models import (
    AuditAlert,
    Community,
    CompoundAlias,
    PersonalDataAccess,
    PersonalDataAccessReason,
    Resident,
    ResidentPhone,
    User,
)

logger = logging.getLogger("healthkit.audit")

# What must never reach the append-only audit's `context` even if a caller passes typed text
# through it (e.g. a filter query string): phone- and ID-shaped digit runs, non-ASCII text such as
# names and addresses, and their URL-encoded forms.
_CONTEXT_PERSONAL = re.compile(r"(?<!\d)(\d{11}|\d{17}[\dXx])(?!\d)|[^\x00-\x7f]+|(%[0-9A-Fa-f]{2})+")


def audit_context(text: str) -> str:
    """The program-written code kept in the audit row, with anything person-shaped masked."""
    return _CONTEXT_PERSONAL.sub("*", text)[:120]


def normalize_place_text(text: str) -> str:
    """Drop spaces and punctuation so '望京 西园-三区' and '望京西园三区' compare equal."""
    return "".join(ch for ch in (text or "") if ch.isalnum()).lower()


@transaction.atomic
def resident_create(
    *, name: str, id_number: str, phones: list[str] | tuple[str, ...] = (), community: Community | None = None
) -> Resident:
    """Create a resident; raises ValidationError (translated, no data echoed) on a bad ID or phone."""
    resident = Resident(name=name.strip(), community=community)
    resident.set_id_number(id_number)
    resident.save()
    for index, phone in enumerate(phones):
        resident_add_phone(resident=resident, phone=phone, primary=index == 0)
    return resident


def resident_get_or_create(
    *, name: str, id_number: str, phone: str | None = None, community: Community | None = None
) -> tuple[Resident, bool]:
    """Find by keyed hash or create. Idempotent under concurrency thanks to the unique hash."""
    number = pii.validate_id_number(id_number)
    existing = Resident.objects.filter(id_hash=pii.id_hash(number)).first()
    if existing is not None:
        if phone:
            resident_add_phone(resident=existing, phone=phone, primary=False)
        return existing, False
    with transaction.atomic():
        resident, created = Resident.objects.get_or_create(
            id_hash=pii.id_hash(number),
            defaults={
                "name": name.strip(),
                "id_encrypted": pii.encrypt(number),
                "id_masked": pii.mask_id(number),
                "community": community,
            },
        )
        if phone:
            resident_add_phone(resident=resident, phone=phone, primary=created)
    return resident, created


def resident_add_phone(*, resident: Resident, phone: str, primary: bool = False) -> ResidentPhone:
    number = pii.validate_phone(phone)
    existing = resident.phones.filter(phone_hash=pii.phone_hash(number)).first()
    if existing is not None:
        return existing
    entry = ResidentPhone(resident=resident, is_primary=primary)
    entry.set_phone(number)
    entry.save()
    return entry


def access_log(
    *, actor: User, resident: Resident | None = None, resident_id: int | None = None, action: str,
    context: str = "", reason: str = "",
) -> PersonalDataAccess:
    """Record one look at (or reveal, look-up, export of) a person's data, with the client address
    of the current request, then check the enumeration alarm. `context` is a program-written code
    ("appeal:12"), never personal data; a typed `reason` is kept apart so it can be forgotten."""
    entry = PersonalDataAccess.objects.create(
        actor=actor, resident_id=resident.pk if resident is not None else resident_id, action=action,
        context=audit_context(context), ip=current_client_ip(),
    )
    if reason.strip():
        PersonalDataAccessReason.objects.create(access=entry, reason=reason.strip()[:200])
    if entry.resident_id is not None or action == PersonalDataAccess.Action.LOOKUP:
        enumeration_check(actor=actor, ip=entry.ip)
    return entry


def enumeration_check(*, actor: User, ip: str | None) -> list[AuditAlert]:
    """Raise an alert when `actor` (or `ip`) has touched more different residents within
    AUDIT_ENUMERATION_WINDOW_MINUTES than its threshold, once per window (no alert storm); a
    look-up that found nobody counts as one more (probing ID numbers is enumeration too):
    a row for the supervisors' audit page and a warning in the log (account id, address and
    count only: no personal data). Returns the alerts raised now."""
    window = settings.AUDIT_ENUMERATION_WINDOW_MINUTES
    since = timezone.now() - dt.timedelta(minutes=window)
    who = Q(actor=actor) | Q(ip=ip) if ip else Q(actor=actor)
    # One statement for both counts (this runs on every audited page view).
    miss = Q(resident__isnull=True, action=PersonalDataAccess.Action.LOOKUP)
    by_ip = Q(ip=ip) if ip else Q(pk__in=[])
    touched = PersonalDataAccess.objects.filter(who, at__gte=since).filter(
        Q(resident__isnull=False) | miss).aggregate(
        account=Count("resident", distinct=True, filter=Q(actor=actor)),
        account_misses=Count("pk", filter=Q(actor=actor) & miss),
        address=Count("resident", distinct=True, filter=by_ip),
        address_misses=Count("pk", filter=by_ip & miss),
    )
    subjects = [(AuditAlert.Kind.ACCOUNT, {"actor": actor}, settings.AUDIT_ENUMERATION_THRESHOLD,
                 touched["account"] + touched["account_misses"])]
    if ip:
        subjects.append((AuditAlert.Kind.ADDRESS, {"ip": ip}, settings.AUDIT_ENUMERATION_IP_THRESHOLD,
                         touched["address"] + touched["address_misses"]))
    raised = []
    for kind, subject, threshold, count in subjects:
        if count < threshold or AuditAlert.objects.filter(kind=kind, raised_at__gte=since, **subject).exists():
            continue
        alert = AuditAlert.objects.create(kind=kind, residents=count, window_minutes=window, **subject)
        logger.warning("enumeration alert %s: %s touched %d different residents in %d minutes", alert.pk,
                       f"account={actor.pk}" if kind == AuditAlert.Kind.ACCOUNT else f"address={ip}",
                       count, window)
        raised.append(alert)
    return raised


def audit_alert_acknowledge(*, alert: AuditAlert, actor: User) -> AuditAlert:
    """A supervisor has looked into the alert; it leaves the open list (idempotent)."""
    AuditAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=actor)
    alert.refresh_from_db()
    return alert


def resident_reveal(*, actor: User, resident: Resident, reason: str, context: str = "") -> dict[str, object]:
    """The only way to see an ID number and phones in clear: scoped by the registry (hotline staff,
    workers of the resident's community; else PermissionDenied), and audited first."""
    from communities.selectors import resident_access

    resident_access(user=actor, resident_id=resident.pk)
    return resident_reveal_scoped(actor=actor, resident=resident, reason=reason, context=context)


def resident_reveal_scoped(*, actor: User, resident: Resident, reason: str, context: str = "") -> dict[str, object]:
    """Audit, then reveal, for a caller whose own scope rule has admitted `actor` (e.g. an appeal
    routed to the worker's community, which the registry's community scope does not know about).
    The access log row is written before anything is returned."""
    access_log(actor=actor, resident=resident, action=PersonalDataAccess.Action.REVEAL_ID,
               context=context, reason=reason)
    return {
        "name": resident.name,
        "id_number": resident.reveal_id_number(),
        "phones": [p.reveal_phone() for p in resident.phones.all()],
    }


def compound_alias_add(*, community: Community, name: str, address: str = "") -> CompoundAlias:
    alias, _ = CompoundAlias.objects.update_or_create(
        community=community,
        name=name,
        defaults={"address": address, "normalized": normalize_place_text(name)},
    )
    return alias


def rotate_personal_data_keys(batch_size: int = 2000) -> int:
    """Re-encrypt every `*_encrypted` field of every installed model under the newest key.

    Keyset pagination keeps memory bounded; fields are found through the app registry so other
    apps' encrypted columns (SMS outbox, appeals) are included without importing them.
    """
    from django.apps import apps

    count = 0
    for model in apps.get_models():
        fields = [f.name for f in model._meta.concrete_fields if f.name.endswith("_encrypted")]
        for field in fields:
            last = 0
            while True:
                rows = list(
                    model.objects.filter(pk__gt=last).exclude(**{field: ""})
                    .order_by("pk").values_list("pk", field)[:batch_size]
                )
                if not rows:
                    break
                objs = [model(pk=pk, **{field: pii.rotate(token)}) for pk, token in rows]
                model.objects.bulk_update(objs, [field])
                count += len(objs)
                last = rows[-1][0]
    return count
