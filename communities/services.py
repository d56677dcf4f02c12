"""Writes to the registry."""

from django.db import transaction

from communities import pii
from communities.models import (
    Community,
    CompoundAlias,
    PersonalDataAccess,
    Resident,
    ResidentPhone,
    User,
)


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
    *, actor: User, resident: Resident | None, action: str, context: str = "", reason: str = ""
) -> PersonalDataAccess:
    return PersonalDataAccess.objects.create(
        actor=actor, resident=resident, action=action, context=context[:120], reason=reason[:200]
    )


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
