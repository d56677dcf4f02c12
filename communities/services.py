"""Writes to the registry."""

import datetime as dt
import logging
import re
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q

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
from healthkit import clock

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
    since = clock.now() - dt.timedelta(minutes=window)
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
        acknowledged_at=clock.now(), acknowledged_by=actor)
    alert.refresh_from_db()
    return alert


def resident_reveal(*, actor: User, resident: Resident, reason: str, context: str = "") -> dict[str, object]:
    """The only way to see an ID number and phones in clear: scoped by the registry (hotline staff,
    workers of the resident's community; else PermissionDenied), and audited first."""
    from communities.selectors import resident_access

    resident_access(user=actor, resident_id=resident.pk)
    return resident_reveal_scoped(actor=actor, resident=resident, reason=reason, context=context)


def resident_reveal_scoped(*, actor: User, resident: Resident, reason: str, context: str = "",
                           extra_phones: tuple[str, ...] = ()) -> dict[str, object]:
    """Audit, then reveal, for a caller whose own scope rule has admitted `actor` (e.g. an appeal
    routed to the worker's community, which the registry's community scope does not know about).
    What is shown is what is audited: a row for the ID number and, when any phone is shown (the
    registry's, and `extra_phones` the caller holds for this person, e.g. a task's contact
    phone), a row for the phones, both written before anything is returned."""
    phones = list(dict.fromkeys([*(p.reveal_phone() for p in resident.phones.all()), *filter(None, extra_phones)]))
    access_log(actor=actor, resident=resident, action=PersonalDataAccess.Action.REVEAL_ID,
               context=context, reason=reason)
    if phones:
        access_log(actor=actor, resident=resident, action=PersonalDataAccess.Action.REVEAL_PHONE,
                   context=context, reason=reason)
    return {"name": resident.name, "id_number": resident.reveal_id_number(), "phones": phones}


def compound_alias_add(*, community: Community, name: str, address: str = "") -> CompoundAlias:
    alias, _ = CompoundAlias.objects.update_or_create(
        community=community,
        name=name,
        defaults={"address": address, "normalized": normalize_place_text(name)},
    )
    return alias


def _encrypted_columns() -> list[tuple[Any, Any]]:
    """(model, field) of every column holding personal-data ciphertext, in every installed app:
    `*_encrypted` text columns and EncryptedJSONField columns (found, not listed)."""
    from django.apps import apps

    from communities.fields import EncryptedJSONField

    return [(model, field) for model in apps.get_models() for field in model._meta.concrete_fields
            if field.name.endswith("_encrypted") or isinstance(field, EncryptedJSONField)]


def rotate_personal_data_keys(batch_size: int = 2000) -> int:
    """Re-encrypt every personal-data column under the newest key; returns the rows rewritten.

    Safe while the site runs: each batch is written with a compare-and-set (`... WHERE value =
    the value read`), so a row the application changed meanwhile (already under the newest key,
    since writes always use it) is left alone, never reverted. Keyset pagination keeps memory
    bounded. Session drafts are rotated by `rotate_session_secrets`.
    """
    count = 0
    with connection.cursor() as cursor:
        for model, field in _encrypted_columns():
            table, column = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(field.column)
            pk = connection.ops.quote_name(model._meta.pk.column)
            pk_type = model._meta.pk.db_type(connection).split()[0]
            last = None
            while True:
                cursor.execute(
                    f"SELECT {pk}, {column} FROM {table} WHERE {column} LIKE 'gAAAAA%%'"  # noqa: S608 - names from the model registry
                    + (f" AND {pk} > %s" if last is not None else "") + f" ORDER BY {pk} LIMIT %s",
                    ([last] if last is not None else []) + [batch_size],
                )
                rows = cursor.fetchall()
                if not rows:
                    break
                cursor.execute(
                    f"UPDATE {table} t SET {column} = v.new "  # noqa: S608 - names from the model registry
                    f"FROM unnest(%s::{pk_type}[], %s::text[], %s::text[]) AS v(pk, old, new) "
                    f"WHERE t.{pk} = v.pk AND t.{column} = v.old",
                    [[r[0] for r in rows], [r[1] for r in rows], [pii.rotate(r[1]) for r in rows]],
                )
                count += cursor.rowcount
                last = rows[-1][0]
    return count


def _rotate_nested(value: Any) -> tuple[Any, bool]:
    if isinstance(value, str) and value.startswith("gAAAAA"):
        try:
            return pii.rotate(value), True
        except Exception:  # not ours (or a dropped key): leave it, the flow treats it as expired
            return value, False
    if isinstance(value, dict):
        changed = False
        out = {}
        for key, item in value.items():
            out[key], did = _rotate_nested(item)
            changed |= did
        return out, changed
    if isinstance(value, list):
        pairs = [_rotate_nested(item) for item in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    return value, False


def rotate_session_secrets(batch_size: int = 500) -> int:
    """Re-encrypt the ciphertext residents' drafts keep in their sessions (database sessions),
    with the same compare-and-set as the columns, so a draft in progress survives dropping the
    old key. Returns the sessions rewritten."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    if settings.SESSION_ENGINE not in ("django.contrib.sessions.backends.db",
                                       "django.contrib.sessions.backends.cached_db"):
        return 0
    store = SessionStore()
    count = 0
    last = ""
    while True:
        batch = list(Session.objects.filter(session_key__gt=last).order_by("session_key")
                     .values_list("session_key", "session_data")[:batch_size])
        if not batch:
            break
        for key, data in batch:
            decoded, changed = _rotate_nested(store.decode(data))
            if changed:
                count += Session.objects.filter(session_key=key, session_data=data).update(
                    session_data=store.encode(decoded))
        last = batch[-1][0]
    return count


# Columns holding a keyed hash, and the encrypted column it is the hash of. Another app with a
# keyed-hash column adds a line here so `rotate_pii_keys --rehash` keeps it in step.
KEYED_HASH_COLUMNS: list[tuple[str, str, str, str]] = [
    # (app_label.Model, hash field, encrypted source field, "id" | "phone")
    ("communities.Resident", "id_hash", "id_encrypted", "id"),
    ("communities.ResidentPhone", "phone_hash", "phone_encrypted", "phone"),
    ("appeals.Appeal", "contact_phone_hash", "contact_phone_encrypted", "phone"),
    ("appeals.Appeal", "claimed_id_hash", "claimed_id_encrypted", "id"),
]


@transaction.atomic
def rehash_personal_data(*, new_key: str, batch_size: int = 2000) -> int:
    """Recompute every keyed look-up hash under `new_key` (from the decrypted values), in one
    transaction, tables locked against writers. Run with the site stopped, then set
    PII_HASH_KEY to `new_key` and start it (docs/security-controls.md). Returns rows updated."""
    from django.apps import apps

    if not new_key or new_key == settings.PII_HASH_KEY:
        raise ValueError("give a new hash key different from PII_HASH_KEY")
    hashers = {"id": pii.id_hash, "phone": pii.phone_hash}
    count = 0
    with connection.cursor() as cursor:
        for label, hash_field, source_field, kind in KEYED_HASH_COLUMNS:
            try:
                model = apps.get_model(label)
            except LookupError:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            hash_col = connection.ops.quote_name(model._meta.get_field(hash_field).column)
            src_col = connection.ops.quote_name(model._meta.get_field(source_field).column)
            pk = connection.ops.quote_name(model._meta.pk.column)
            pk_type = model._meta.pk.db_type(connection).split()[0]
            last = None
            while True:
                cursor.execute(
                    f"SELECT {pk}, {src_col} FROM {table} WHERE {src_col} <> '' AND {hash_col} <> ''"  # noqa: S608 - registry names
                    + (f" AND {pk} > %s" if last is not None else "") + f" ORDER BY {pk} LIMIT %s",
                    ([last] if last is not None else []) + [batch_size],
                )
                rows = cursor.fetchall()
                if not rows:
                    break
                new = [hashers[kind](pii.decrypt(token), key=new_key) for _pk, token in rows]
                cursor.execute(
                    f"UPDATE {table} t SET {hash_col} = v.h FROM unnest(%s::{pk_type}[], %s::text[]) AS v(pk, h) "  # noqa: S608
                    f"WHERE t.{pk} = v.pk",
                    [[r[0] for r in rows], new],
                )
                count += cursor.rowcount
                last = rows[-1][0]
    return count
