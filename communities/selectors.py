"""Reads of the registry, including the community finder and role scoping."""

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from communities import pii
from communities.models import (
    AuditAlert,
    Community,
    CompoundAlias,
    District,
    PersonalDataAccess,
    Resident,
    User,
)
from communities.services import normalize_place_text


def communities_visible_to(user: User) -> QuerySet[Community]:
    if not user.is_authenticated or not user.is_active:
        return Community.objects.none()
    if user.is_superuser or user.sees_all_communities:
        return Community.objects.all()
    if user.role == User.Role.COMMUNITY_WORKER:
        return Community.objects.filter(workers=user)
    return Community.objects.none()


def residents_visible_to(user: User) -> QuerySet[Resident]:
    if not user.is_authenticated or not user.is_active:
        return Resident.objects.none()
    if user.is_superuser or user.sees_all_communities:
        return Resident.objects.all()
    if user.role == User.Role.COMMUNITY_WORKER:
        return Resident.objects.filter(community__workers=user)
    return Resident.objects.none()


def resident_access(*, user: User, resident_id: int) -> Resident:
    """Fetch a resident the user may see, or raise PermissionDenied (not 404: no enumeration hint)."""
    resident = residents_visible_to(user).filter(pk=resident_id).first()
    if resident is None:
        raise PermissionDenied
    return resident


def resident_by_id_number(id_number: str) -> Resident | None:
    """Exact look-up through the keyed hash; an invalid number simply finds nobody."""
    return Resident.objects.filter(id_hash=pii.id_hash(id_number)).first()


def residents_by_phone(phone: str) -> QuerySet[Resident]:
    return Resident.objects.filter(phones__phone_hash=pii.phone_hash(phone)).distinct()


@dataclass(frozen=True)
class CommunityMatch:
    community: Community
    score: float
    matched: str


def _bigrams(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)} if len(text) > 1 else {text}


def community_find(text: str, *, limit: int = 5) -> list[CommunityMatch]:
    """Likely communities for a free-text address or compound name, best first.

    Residents write the compound (小区) or a full address; the community is what counts. We look
    for aliases contained in the text, aliases and communities containing the text, then rank
    everything by character-bigram overlap (works for Chinese without a tokenizer), with a bonus
    when the district or street is named too.
    """
    query = normalize_place_text(text)
    if len(query) < 2:
        return []
    grams = _bigrams(query)
    # Candidate aliases: contained in the query, containing it, or sharing a rare-ish bigram.
    gram_filter = Q()
    for gram in sorted(grams, key=len, reverse=True)[:24]:
        # the compound's name (normalised) or its street address (as written: the grams of a
        # normalised query still occur in it, only punctuation is dropped)
        gram_filter |= Q(normalized__contains=gram) | Q(address__contains=gram)
    aliases = (
        CompoundAlias.objects.select_related("community__street__district")
        .filter(gram_filter)
        .only("name", "normalized", "address", "community__name", "community__street__name",
              "community__street__district__name", "community__code", "community__street__code",
              "community__street__district__code")[:400]
    )
    communities = (
        Community.objects.select_related("street__district")
        .filter(Q(name__icontains=text.strip()) | Q(street__name__icontains=text.strip()))[:50]
    )
    best: dict[int, CommunityMatch] = {}

    def consider(community: Community, candidate: str, label: str) -> None:
        if not candidate:
            return
        if candidate in query:
            score = 0.6 + 0.4 * min(len(candidate) / max(len(query), 1), 1.0)
        elif query in candidate:
            score = 0.5 + 0.4 * len(query) / len(candidate)
        else:
            cand = _bigrams(candidate)
            score = 0.8 * (2 * len(grams & cand) / (len(grams) + len(cand)))
        district = community.street.district
        if normalize_place_text(district.name) in query or normalize_place_text(district.name[:-1]) in query:
            score += 0.1
        if normalize_place_text(community.street.name) in query:
            score += 0.1
        current = best.get(community.pk)
        if current is None or score > current.score:
            best[community.pk] = CommunityMatch(community=community, score=round(score, 3), matched=label)

    for alias in aliases:
        consider(alias.community, alias.normalized, alias.name)
        if alias.address:
            consider(alias.community, normalize_place_text(alias.address), alias.name)
    for community in communities:
        consider(community, normalize_place_text(community.name), community.name)
    ranked = sorted(best.values(), key=lambda m: (-m.score, m.community.code))
    return [m for m in ranked if m.score >= 0.2][:limit]


def districts() -> QuerySet[District]:
    return District.objects.all()


@dataclass(frozen=True)
class AuditFilters:
    staff: str = ""                     # exact username
    resident: Resident | None = None    # found through the keyed hash of a typed ID number
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    action: str = ""


def audit_search(filters: AuditFilters) -> QuerySet[PersonalDataAccess]:
    """The access audit, newest first, by staff account, resident and time (supervisors' page).
    A resident filter with no resident behind it (unknown ID) finds nothing."""
    rows = PersonalDataAccess.objects.select_related("actor", "resident", "reason_note").order_by("-at", "-id")
    if filters.staff:
        rows = rows.filter(actor__username=filters.staff)
    if filters.resident is not None:
        rows = rows.filter(resident=filters.resident)
    if filters.since:
        rows = rows.filter(at__gte=filters.since)
    if filters.until:
        rows = rows.filter(at__lt=filters.until)
    if filters.action:
        rows = rows.filter(action=filters.action)
    return rows


def audit_alerts_open() -> QuerySet[AuditAlert]:
    """Enumeration alerts no supervisor has acknowledged yet, newest first."""
    return AuditAlert.objects.filter(acknowledged_at__isnull=True).select_related("actor").order_by("-raised_at")


def county_names(codes) -> dict[str, str]:
    """County codes → full names (province, prefecture, county), one query for all of them."""
    from communities.models import County

    wanted = {str(c) for c in codes if c}
    return dict(County.objects.filter(code__in=wanted).values_list("code", "full_name")) if wanted else {}


def county_label(code: str, names: dict[str, str] | None = None) -> str:
    """The county in words; a code not in the table reads "county (code)"."""
    from django.utils.translation import gettext as _

    names = county_names([code]) if names is None else names
    return names.get(str(code)) or _("county (%(code)s)") % {"code": code}
