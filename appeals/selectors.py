"""Reads of the appeals app: role scoping, the queue, evidence access, the resident status look-up."""

import base64
import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.core.exceptions import EmptyResultSet, PermissionDenied, ValidationError
from django.db import connection
from django.db.models import (
    CharField,
    F,
    Field,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThan, LessThan
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from appeals.models import Appeal, AppealEvent, AppealEvidence
from communities import pii
from communities.models import Community, PersonalDataAccess, Resident, User
from communities.selectors import (
    community_find,
    resident_by_id_number,
    residents_by_phone,
    residents_visible_to,
)
from communities.services import access_log
from healthkit import clock
from healthkit.models import PopupCase
from healthkit.permissions import has_role
from healthkit.selectors import AnyOf, popups_active_at

HANDLER_ROLES = (User.Role.OPERATOR, User.Role.SUPERVISOR, User.Role.ADMINISTRATOR)
OVERSEER_ROLES = (User.Role.SUPERVISOR, User.Role.ADMINISTRATOR)


def appeals_visible_to(user: User) -> QuerySet[Appeal]:
    """Hotline staff see every appeal. Community workers: appeals routed to one of their
    communities; before the hotline routes an appeal, also those naming one of their communities
    (the resident's choice). Once routed elsewhere, the named community no longer sees it."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Appeal.objects.none()
    if has_role(user, HANDLER_ROLES):
        return Appeal.objects.all()
    if user.role == User.Role.COMMUNITY_WORKER:
        # routed_community in mine, or not routed and community in mine: one expression, which
        # appeal_responsible_idx leads. The communities as a list of keys (a worker serves a
        # handful): a subquery made the planner walk every appeal in order, joining each.
        mine = list(Community.objects.filter(workers=user).values_list("pk", flat=True))
        return (Appeal.objects.alias(responsible_community=Coalesce("routed_community", "community"))
                .filter(responsible_community__in=mine))
    return Appeal.objects.none()


def scoped_by_community(user: User) -> bool:
    """Whether appeals_visible_to(user) is a few communities' appeals (a community worker's),
    read through appeal_responsible_idx, rather than the city's."""
    return (getattr(user, "is_authenticated", False) and user.is_active and not has_role(user, HANDLER_ROLES)
            and user.role == User.Role.COMMUNITY_WORKER)


def can_see_record(user: User, appeal: Appeal) -> bool:
    """Whether `user` may see the resident's record behind an appeal they can open (popups and
    their reasons, tests, registered community and address, reveal). Hotline staff: yes. A
    community worker: only when the resident is registered in one of their communities or the
    hotline has routed the appeal to one. The community a filer named (whatever the channel,
    confirmed or not) sees the filer's own words only: the appeal's text, category, the popup
    number they gave, the address they wrote, their pictures."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if has_role(user, HANDLER_ROLES):
        return True
    if user.role != User.Role.COMMUNITY_WORKER:
        return False
    mine = set(user.communities.values_list("pk", flat=True))
    registered = appeal.resident.community_id if appeal.resident_id else None
    return bool(mine & {registered, appeal.routed_community_id} - {None})


def appeal_access(*, user: User, pk: int, where: str) -> Appeal:
    """The appeal if the user may see it, else PermissionDenied (no hint whether it exists).
    Every admitted call is written to the access audit (`where`: "console", "api", the action):
    the one door to an appeal, so a new page cannot forget the audit.

    The one boundary for pages and APIs that show an appeal: `appeal.shows_record` says whether
    the user may also see the resident's record (can_see_record); when false, callers show the
    filer's own words only (appeal_popups, Appeal.person_masked)."""
    appeal = (
        appeals_visible_to(user)
        .select_related("resident", "popup", "community__street__district", "routed_community__street__district",
                        "assigned_to", "merged_into")
        .filter(pk=pk).first()
    )
    if appeal is None:
        raise PermissionDenied
    access_log(actor=user, resident=appeal.resident, action=PersonalDataAccess.Action.VIEW,
               context=f"appeal:{appeal.pk}/{where}")
    appeal.shows_record = can_see_record(user, appeal)
    return appeal


def appeal_popups(appeal: Appeal) -> list[PopupCase]:
    """The popups to show with an appeal fetched by appeal_access: its popup and the resident's
    other open popups, or none when the user may not see the record."""
    if not getattr(appeal, "shows_record", False) or appeal.resident_id is None:
        return []
    popups = [appeal.popup] if appeal.popup is not None else []
    popups += [p for p in resident_open_popups(appeal.resident) if p.pk != appeal.popup_id]
    return popups


def appeals_for_person(*, user: User, id_number: str = "", phone: str = "", context: str,
                       limit: int = 100) -> list[Appeal]:
    """Appeals (visible to `user`) of the person with this exact ID number and/or phone, newest
    first. Look-ups go through the keyed hash and each is written to the access log."""
    qs = appeals_visible_to(user).select_related("resident", "community__street__district", "routed_community",
                                                 "assigned_to")
    if id_number:
        resident = resident_by_id_number(id_number)
        access_log(actor=user, resident=resident, action=PersonalDataAccess.Action.LOOKUP, context=context)
        try:
            given = Q(claimed_id_hash=pii.id_hash(pii.validate_id_number(id_number)))
        except ValidationError:
            given = Q(pk__in=[])
        qs = qs.filter(Q(resident=resident) | given) if resident else qs.filter(given)
    if phone:
        by_phone = list(residents_by_phone(phone)[:20])
        for resident in by_phone or [None]:
            access_log(actor=user, resident=resident, action=PersonalDataAccess.Action.LOOKUP, context=context)
        qs = qs.filter(Q(contact_phone_hash=pii.phone_hash(phone)) | Q(resident__in=by_phone))
    return list(qs.order_by("-created_at", "-id")[:limit])


def can_see_evidence(user: User, appeal: Appeal) -> bool:
    """Supervisors and administrators: all. Operators: appeals assigned to them. Community
    workers: appeals routed to one of their communities, or not yet routed and naming one of
    them (as appeals_visible_to). Nobody else."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if has_role(user, OVERSEER_ROLES):
        return True
    if user.role == User.Role.OPERATOR:
        return appeal.assigned_to_id == user.pk
    if user.role == User.Role.COMMUNITY_WORKER:
        responsible = appeal.routed_community_id or appeal.community_id
        return bool(responsible) and user.communities.filter(pk=responsible).exists()
    return False


def can_reveal_resident(user: User, appeal: Appeal) -> bool:
    """Who may reveal (audited) the resident behind an appeal they can open: whoever the registry
    lets see the resident (hotline staff, workers of the resident's community), and workers of the
    community the appeal is routed to, which has to reach the resident to decide."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if residents_visible_to(user).filter(pk=appeal.resident_id).exists():
        return True
    return bool(user.role == User.Role.COMMUNITY_WORKER and appeal.routed_community_id
                and user.communities.filter(pk=appeal.routed_community_id).exists())


def appeal_evidence(appeal: Appeal) -> QuerySet[AppealEvidence]:
    """The appeal's filed screenshots (drafts excluded), oldest first."""
    return AppealEvidence.objects.filter(appeal=appeal).order_by("created_at", "id")


def evidence_access(*, user: User, pk: int, where: str, head: bool = False) -> AppealEvidence:
    """Evidence the user may open, else PermissionDenied (same answer for 'absent' and 'forbidden').
    Every admitted call is audited (`where`: "file", "thumbnail", "api"): each picture opened is a
    row in the access audit. `head` (an HTTP HEAD: type and size, no picture) is checked the same
    but is not a view of the picture, so it writes no view row."""
    evidence = AppealEvidence.objects.select_related("appeal").filter(pk=pk, appeal__isnull=False).first()
    if evidence is None or not can_see_evidence(user, evidence.appeal):
        raise PermissionDenied
    if head:
        return evidence
    access_log(actor=user, resident_id=evidence.appeal.resident_id, action=PersonalDataAccess.Action.VIEW,
               context=f"evidence:{evidence.pk}/{where}")
    return evidence


def appeal_history(appeal: Appeal, *, public_only: bool = False) -> QuerySet[AppealEvent]:
    events = appeal.events.select_related("actor").order_by("at", "id")
    return events.filter(public=True) if public_only else events


@dataclass(frozen=True)
class StatusLookup:
    appeal: Appeal
    # The phone given is one of the resident's phones on record. When it is only the appeal's
    # contact phone, the person asking has shown a name, an ID number and their own phone: they
    # see their filing's progress, nothing of the resident's record (popups, community, outcome).
    phone_on_record: bool


def appeal_for_status(*, reference: str, id_number: str, phone: str) -> StatusLookup | None:
    """The resident's own appeal: reference, ID and phone must all match (phone = the appeal's
    contact phone or one of the resident's). None otherwise, whichever part is wrong."""
    reference = (reference or "").strip().upper()
    try:
        number = pii.validate_id_number(id_number)
        mobile = pii.validate_phone(phone)
    except ValidationError:  # an invalid number simply finds nothing
        return None
    given = pii.id_hash(number)
    appeal = (Appeal.objects.select_related("resident", "community", "routed_community", "merged_into")
              .filter(Q(claimed_id_hash=given) | Q(resident__id_hash=given), reference=reference).first())
    if appeal is None:
        return None
    ph = pii.phone_hash(mobile)
    on_record = bool(appeal.resident_id and appeal.resident.id_hash == given
                     and appeal.resident.phones.filter(phone_hash=ph).exists())
    if on_record or appeal.contact_phone_hash == ph:
        return StatusLookup(appeal=appeal, phone_on_record=on_record)
    return None


def resident_open_popups(resident: Resident, *, popup_type: int | None = None) -> list[PopupCase]:
    qs = popups_active_at(resident).filter(state__in=PopupCase.OPEN_STATES)
    if popup_type is not None:
        qs = qs.filter(popup_type=popup_type)
    return list(qs.order_by("popup_type", "raised_at"))


def popup_open_appeals(popups: list[PopupCase], *, exclude: Appeal | None = None) -> dict[int, str]:
    """popup id → reference of the open appeal holding it (at most one each, by constraint)."""
    qs = Appeal.objects.filter(popup__in=popups, status__in=Appeal.OPEN_STATUSES, merged_into__isnull=True)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return dict(qs.values_list("popup_id", "reference"))


def community_suggestions(appeal: Appeal, *, limit: int = 5) -> list[Community]:
    """Where to route: the community the resident confirmed, the resident's registered one, then
    the finder's matches for the address they wrote."""
    seen: list[Community] = []
    for candidate in (appeal.community, appeal.resident.community if appeal.resident_id else None):
        if candidate is not None and candidate not in seen:
            seen.append(candidate)
    if appeal.address_text:
        for match in community_find(appeal.address_text, limit=limit):
            if match.community not in seen:
                seen.append(match.community)
    return seen[:limit]


# --- The queue: filters live in appeals/filters.py; this is the seek pagination ---------------

# Each ordering names its index (see Appeal.Meta.indexes) and the columns of its seek key.
ORDERINGS = {
    "priority": ("appeal_seek_priority_idx", ["priority", "created_at", "id"]),
    "oldest": ("appeal_seek_created_idx", ["created_at", "id"]),
    "newest": ("appeal_seek_created_idx", ["-created_at", "-id"]),
    "sla": ("appeal_seek_sla_open_idx", ["sla_due_at", "id"]),  # appeal_seek_sla_idx for closed or all
}
COUNT_CAP = 1000


# The queue page shows these columns only: read with .values() (no model instances, no join the
# page does not show) and labelled once per page, so rendering 50 rows is a loop over plain values.
QUEUE_ROW_VALUES = ("id", "reference", "repeat_count", "priority", "status", "category", "claimed_masked",
                    "resident_id", "resident__name", "resident__id_masked", "resident__id_hash",
                    "community__name", "routed_community__name", "assigned_to__username",
                    "created_at", "sla_due_at", "sla_breached_at")


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One queue row as the page shows it: labels, masked person and times already in text."""

    id: int
    reference: str
    url: str
    priority: int
    created_at: dt.datetime
    sla_due_at: dt.datetime | None
    copies: int  # 0 for a single filing, else the filings folded into it (repeats + 1)
    priority_label: str
    status_label: str
    category_label: str
    person: str  # masked: as Appeal.person_masked, no decryption
    community: str
    assignee: str
    filed: str
    sla_due: str
    breached: bool

    @property
    def pk(self) -> int:
        return self.id


def person_masked_from_values(row: dict) -> str:
    """Appeal.person_masked from a values() row: the filer's masked words, else the record's
    stored masked form (the clear ID is never decrypted for a list)."""
    if row["claimed_masked"]:
        return row["claimed_masked"]
    if row["resident_id"] is None:
        return ""
    if (row["resident__id_hash"] or "").startswith(Resident.FORGOTTEN_PREFIX):
        return str(_("(forgotten, no personal data kept)"))
    return pii.masked_person(row["resident__name"], row["resident__id_masked"])


class IsoDateTime(Func):
    """A timestamp as DRF's DateTimeField writes it (ISO 8601 in `zone`, microseconds only when
    not zero, "Z" for a zero offset), made by PostgreSQL: a list of 10,000 rows then loads text
    instead of parsing, converting and formatting four datetimes a row in Python. `zone` is a
    ZoneInfo (its IANA name) or a fixed datetime.timezone (an interval); NULL stays NULL."""

    output_field = CharField()
    _LOCAL = "({v} AT TIME ZONE {z})"
    # The offset in whole seconds: local time minus UTC time.
    _OFFSET = "date_part('epoch', ({v} AT TIME ZONE {z}) - ({v} AT TIME ZONE 'UTC'))::integer"
    _TIME = "to_char({local}, CASE WHEN date_trunc('second', {v}) = {v} THEN 'YYYY-MM-DD\"T\"HH24:MI:SS'" \
            " ELSE 'YYYY-MM-DD\"T\"HH24:MI:SS.US' END)"
    # Any offset (LMT's seconds too); the zone's offsets of this year are matched before it, so
    # that the common case computes the offset once.
    _ANY_OFFSET = (
        "CASE WHEN {offset} < 0 THEN '-' ELSE '+' END"
        " || to_char(make_interval(secs => abs({offset})), 'HH24:MI')"
        " || CASE WHEN mod({offset}, 60) = 0 THEN '' ELSE to_char(abs(mod({offset}, 60)), 'FM\":\"00') END"
    )

    def __init__(self, expression: str, *, zone: dt.tzinfo) -> None:
        super().__init__(expression)
        if isinstance(zone, ZoneInfo) and zone.key:
            self.zone_sql, self.zone_param = "%s", zone.key
        elif isinstance(zone, dt.timezone):
            # An interval in seconds: PostgreSQL reads a '+08' string with the POSIX (inverted) sign
            # and rejects a negative timedelta's '-1 days +20:30:00'.
            self.zone_sql, self.zone_param = "make_interval(secs => %s)", zone.utcoffset(None).total_seconds()
        else:
            raise ValueError("a time zone with neither an IANA name nor a fixed offset")
        year = clock.now().year
        offsets = {zone.utcoffset(dt.datetime(year, month, 1)) for month in (1, 4, 7, 10)} - {dt.timedelta(0)}
        # Each as isoformat() writes it, "+08:00".
        self.known_offsets = [(int(offset.total_seconds()),
                               dt.datetime(2000, 1, 1, tzinfo=dt.timezone(offset)).isoformat()[19:])
                              for offset in sorted(offsets)]

    def as_sql(self, compiler, connection, **extra_context):
        value, value_params = compiler.compile(self.source_expressions[0])
        known = "".join(" WHEN %s THEN %s" for _ in self.known_offsets)
        template = (
            f"CASE WHEN {{v}} IS NULL THEN NULL ELSE {self._TIME.replace('{local}', self._LOCAL)}"
            f" || CASE {self._OFFSET} WHEN 0 THEN 'Z'{{known}}"
            f" ELSE {self._ANY_OFFSET.replace('{offset}', self._OFFSET)} END END"
        )
        sql: list[str] = []
        params: list = []
        for part in re.split(r"(\{v\}|\{z\}|\{known\})", template):
            if part == "{v}":
                sql.append(value)
                params.extend(value_params)
            elif part == "{z}":
                sql.append(self.zone_sql)
                params.append(self.zone_param)
            elif part == "{known}":
                sql.append(known)
                params.extend(p for pair in self.known_offsets for p in pair)
            else:
                sql.append(part)
        return "".join(sql), params


def _short_time(value: dt.datetime | None, tz) -> str:
    """The template filter `date:"m-d H:i"` in the current time zone, without the template."""
    return value.astimezone(tz).strftime("%m-%d %H:%M") if value is not None else ""


_URL_PK = 918273645  # stands for the pk in the ticket URL, reversed once per page


def queue_rows(rows: Iterable[dict]) -> list[QueueRow]:
    """Label values() rows of QUEUE_ROW_VALUES: each choice label translated once per page, not
    once per row and column."""
    tz = timezone.get_current_timezone()
    priorities = {value: str(label) for value, label in Appeal.Priority.choices}
    statuses = {value: str(label) for value, label in Appeal.Status.choices}
    categories = {value: str(label) for value, label in Appeal.Category.choices}
    url_head, url_tail = reverse("appeals:ticket", args=[_URL_PK]).split(str(_URL_PK))
    return [QueueRow(
        id=row["id"], reference=row["reference"], url=f"{url_head}{row['id']}{url_tail}",
        priority=row["priority"], created_at=row["created_at"], sla_due_at=row["sla_due_at"],
        copies=row["repeat_count"] + 1 if row["repeat_count"] else 0,
        priority_label=priorities.get(row["priority"], str(row["priority"])),
        status_label=statuses.get(row["status"], row["status"]),
        category_label=categories.get(row["category"], row["category"]),
        person=person_masked_from_values(row),
        community=row["routed_community__name"] or row["community__name"] or "",
        assignee=row["assigned_to__username"] or "",
        filed=_short_time(row["created_at"], tz), sla_due=_short_time(row["sla_due_at"], tz),
        breached=row["sla_breached_at"] is not None,
    ) for row in rows]


@dataclass
class SeekPage:
    rows: list[QueueRow]
    next_cursor: str | None
    count: int
    count_capped: bool


def _encode(values: list) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, dt.datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


_MAX_ID = 2**63 - 1  # bigint


def _cursor_value(name: str, value):
    """One sort key from a cursor, or raise ValueError: the cursor comes from the URL, so anything
    our own _encode could not have written (null, naive or malformed time, an out-of-range or
    non-integer number) is refused rather than handed to the database."""
    if name in ("created_at", "sla_due_at"):
        if not isinstance(value, str):
            raise ValueError(name)
        moment = dt.datetime.fromisoformat(value)
        if timezone.is_naive(moment):
            raise ValueError(name)
        return moment
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(name)
    if name == "priority" and value not in Appeal.Priority.values:
        raise ValueError(name)
    if name == "id" and not 0 < value <= _MAX_ID:
        raise ValueError(name)
    return value


def _decode(cursor: str, fields: list[str]) -> list | None:
    """The cursor's sort key, or None for anything malformed (the caller restarts at page one)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(fields):
            return None
        return [_cursor_value(field.lstrip("-"), value) for field, value in zip(fields, raw, strict=True)]
    except (ValueError, TypeError, OverflowError, RecursionError):
        # ValueError covers bad base64, bad UTF-8 and bad JSON; RecursionError a deeply nested array.
        return None


def cursor_readable(cursor: str, ordering: str) -> bool:
    """Whether `cursor` is one seek_page could have written for `ordering`."""
    return ordering in ORDERINGS and _decode(cursor, ORDERINGS[ordering][1]) is not None


class _Row(Func):
    """A SQL row value `(a, b, c)`: compared as a whole, PostgreSQL turns `(a, b, c) > (x, y, z)`
    into an index condition on a (a, b, c) b-tree, where nested ORs end up as a filter over every
    row before the cursor ("Rows Removed by Filter")."""

    function = ""
    template = "ROW(%(expressions)s)"
    output_field = Field()


def _after(fields: list[str], values: list) -> Q | GreaterThan | LessThan:
    """Rows after the cursor: `(a, b, c) > (x, y, z)` (or `<` for a descending order). Every
    ordering sorts all its columns the same way, so a single row comparison matches the index."""
    descending = {f.startswith("-") for f in fields}
    if len(descending) != 1:
        raise ValueError("mixed sort directions have no single row comparison")
    lhs = _Row(*[F(f.lstrip("-")) for f in fields])
    rhs = _Row(*[Value(v) for v in values])
    return LessThan(lhs, rhs) if descending.pop() else GreaterThan(lhs, rhs)


def _page_ids_sql(qs: QuerySet[Appeal], *, ordering: str, cursor: str | None, size: int) -> tuple[str, list]:
    """SQL of one array: the queue's count capped at COUNT_CAP + 1, negated (never an id), then the
    page's ids (size+1, to tell whether a next page exists).

    One read gives both: the queue's first COUNT_CAP + 1 rows in the page's order, through whatever
    the planner finds cheapest (the ordering's index, which carries the filtered columns, or the
    filters' own indexes and a sort when they match few rows). The page is taken from those rows
    when they hold it (the first pages, or all of a small queue); only a cursor past them walks the
    ordering's index from the cursor (an InitPlan, run only when the CASE reaches it).

    A walk alone reads the whole queue before it finds, or fails to find, the rows of a filter
    matching few rows: 0.2-0.9 s at 1 M appeals."""
    _index, fields = ORDERINGS.get(ordering, ORDERINGS["priority"])
    counted = _counted(qs, ordering)
    values = _decode(cursor, fields) if cursor else None
    walk = counted.order_by(*fields)
    if values is not None:
        walk = walk.filter(_after(fields, values))
    keys = [f.lstrip("-") for f in fields]
    capped_sql, capped_params = counted.order_by(*fields).values(*keys)[: COUNT_CAP + 1].query.sql_with_params()
    walk_sql, walk_params = walk.values("pk")[: size + 1].query.sql_with_params()
    qn = connection.ops.quote_name
    columns = ", ".join(f"capped.{qn(key)}" for key in keys)
    direction = " DESC" if fields[0].startswith("-") else ""
    order = ", ".join(f"capped.{qn(key)}{direction}" for key in keys)
    after_sql, after_params = "", []
    if values is not None:
        placeholders = ", ".join(["%s"] * len(values))
        after_sql = f" FILTER (WHERE ROW({columns}) {'<' if direction else '>'} ROW({placeholders}))"
        after_params = list(values)
    # Only quoted names and integers are written in; every value is a parameter.
    limit, cap = int(size) + 1, int(COUNT_CAP)
    held = f"count(*) <= {cap} OR count(*){after_sql} >= {limit}"
    page = f"coalesce((array_agg(capped.{qn('id')} ORDER BY {order}){after_sql})[1:{limit}], '{{}}')"
    sql = f"SELECT ARRAY[-count(*)] || CASE WHEN {held} THEN {page} ELSE ARRAY({walk_sql}) END AS ids FROM ({capped_sql}) AS capped"  # noqa: S608
    return sql, [*after_params, *after_params, *walk_params, *capped_params]


def page_sql(qs: QuerySet[Appeal], *, ordering: str = "priority", cursor: str | None = None,
             size: int = 50) -> tuple[str, list]:
    """The page's one statement: the shown columns (QUEUE_ROW_VALUES) of its rows, each with the
    queue's capped count (`capped_count`), the ids and the count read once (a materialised CTE)
    and the rows joined for those ids only (joined with the filters, the planner may join the
    whole rest of the queue before sorting it). Raises EmptyResultSet when `qs` can match nothing."""
    _index, fields = ORDERINGS.get(ordering, ORDERINGS["priority"])
    ids_sql, ids_params = _page_ids_sql(qs, ordering=ordering, cursor=cursor, size=size)
    rows = (Appeal.objects.filter(AnyOf(F("pk"), RawSQL("(SELECT ids FROM queue_page)::bigint[]", ())))
            .order_by(*fields).values(*QUEUE_ROW_VALUES)
            .annotate(capped_count=RawSQL("(SELECT -ids[1] FROM queue_page)", (), output_field=IntegerField())))
    rows_sql, rows_params = rows.query.sql_with_params()
    return (f"WITH queue_page AS MATERIALIZED ({ids_sql}) {rows_sql}",
            [*ids_params, *rows_params])


def _counted(qs: QuerySet[Appeal], ordering: str) -> QuerySet[Appeal]:
    """The rows the page counts: those its ordering can reach."""
    return qs.filter(sla_due_at__isnull=False) if ordering == "sla" else qs


def seek_page(qs: QuerySet[Appeal], *, ordering: str = "priority", cursor: str | None = None,
              size: int = 50) -> SeekPage:
    """One page by keyset: no OFFSET, and a count capped at COUNT_CAP (never COUNT(*) over all),
    both from one statement (page_sql)."""
    _index, fields = ORDERINGS.get(ordering, ORDERINGS["priority"])
    try:
        sql, params = page_sql(qs, ordering=ordering, cursor=cursor, size=size)
    except EmptyResultSet:
        return SeekPage(rows=[], next_cursor=None, count=0, count_capped=False)
    names = [*QUEUE_ROW_VALUES, "capped_count"]
    with connection.cursor() as db:
        db.execute(sql, params)
        found = [dict(zip(names, row, strict=True)) for row in db.fetchall()]
    if found:
        capped_count = found[0]["capped_count"]
    elif cursor:  # past the end (or a stale cursor): the queue may still hold rows
        capped_count = _counted(qs, ordering).order_by()[: COUNT_CAP + 1].count()
    else:
        capped_count = 0
    rows = queue_rows(found)
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        last = rows[-1]
        next_cursor = _encode([getattr(last, f.lstrip("-")) for f in fields])
    return SeekPage(rows=rows, next_cursor=next_cursor, count=min(capped_count, COUNT_CAP),
                    count_capped=capped_count > COUNT_CAP)


def sla_soon_cutoff() -> dt.datetime:
    return clock.now() + dt.timedelta(hours=1)
