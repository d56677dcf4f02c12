"""Reads of the dashboard: the city's and a district's figures come from the summary tables (a
few thousand rows at city scale); one community's are counted live from its own rows (indexed, a
few thousand), filtered by date range, district, community and popup type."""

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from appeals.clearance.models import ClearanceTask
from appeals.models import Appeal
from appeals.oversight import services
from appeals.oversight.models import (
    DeliveryFigure,
    DurationBin,
    OpenAppealFigure,
    OpenPopupByCommunity,
    OpenPopupFigure,
    OpenTaskFigure,
    SummaryRefresh,
    TrendPoint,
)
from appeals.oversight.services import SMS_DAYS, STRANDED_DAYS
from communities.models import Community, District, User
from healthkit import clock
from healthkit.models import OutboxDelivery, PopupCase, PopupType, SmsMessage

SUPERVISING_ROLES = (User.Role.SUPERVISOR, User.Role.ADMINISTRATOR)
HOURS_SHOWN = 48


@dataclass(frozen=True)
class DashboardFilters:
    date_from: dt.date
    date_to: dt.date
    district: District | None = None
    community: Community | None = None
    popup_type: int | None = None

    @classmethod
    def default(cls, today: dt.date | None = None) -> "DashboardFilters":
        today = today or clock.today()
        return cls(date_from=today - dt.timedelta(days=29), date_to=today)

    @property
    def starts(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.date_from, dt.time()))

    @property
    def ends(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.date_to + dt.timedelta(days=1), dt.time()))


def _by_district(qs: QuerySet, f: DashboardFilters) -> QuerySet:
    """Trends and times of the city or one district, from the summary (kept per district)."""
    if f.district is not None:
        qs = qs.filter(district_id=f.district.pk)
    if f.popup_type:
        qs = qs.filter(popup_type=f.popup_type)
    return qs


def last_refresh() -> SummaryRefresh | None:
    return SummaryRefresh.objects.order_by("-as_of").first()


def _sum_by(rows: list[dict], key: str, field: str = "n") -> dict:
    out: dict = defaultdict(int)
    for row in rows:
        out[row[key]] += row[field] or 0
    return dict(sorted(out.items(), key=lambda kv: (kv[0] is None, kv[0] if kv[0] is not None else 0)))


def _total(rows: list[dict], field: str = "n") -> int:
    return sum(row[field] or 0 for row in rows)


def _summary_rows(model, f: DashboardFilters, fields: tuple[str, ...], typed: bool = True) -> list[dict]:
    """Rows of a district-level summary table under the filters (a few hundred at city scale)."""
    qs = model.objects.all()
    if f.district is not None:
        qs = qs.filter(district=f.district)
    if typed and f.popup_type:
        qs = qs.filter(popup_type=f.popup_type)
    return list(qs.values(*fields))


def _popup_type_q(f: DashboardFilters, prefix: str = "popup__") -> Q:
    return Q(**{f"{prefix}popup_type": f.popup_type}) if f.popup_type else Q()


def open_popups(f: DashboardFilters) -> dict:
    """Open popups. One community: counted live from its residents' popups (an indexed read of a
    few hundred rows); otherwise from the summary."""
    if f.community is not None:
        rows = list(PopupCase.objects.filter(state__in=PopupCase.OPEN_STATES, resident__community=f.community)
                    .filter(_popup_type_q(f, "")).values("popup_type", "state", "source")
                    .annotate(n=Count("id")).order_by())
        by_place = {f.community.pk: _total(rows)} if rows else {}
        place_field = "community"
    else:
        rows = _summary_rows(OpenPopupFigure, f, ("popup_type", "state", "source", "district", "n"))
        if f.district is not None:
            place_field = "community"
            qs = OpenPopupByCommunity.objects.filter(district=f.district)
            if f.popup_type:
                qs = qs.filter(popup_type=f.popup_type)
            by_place = _sum_by(list(qs.values("community", "n")), "community")
        else:
            place_field = "district"
            by_place = _sum_by(rows, "district")
    return {"total": _total(rows), "by_type": _sum_by(rows, "popup_type"), "by_state": _sum_by(rows, "state"),
            "by_source": _sum_by(rows, "source"), "place_field": place_field, "by_place": by_place}


APPEAL_MEASURES = ("n", "breached", "escalated", "repeated", "repeats", "stranded_long")


def open_appeals(f: DashboardFilters) -> dict:
    if f.community is not None:
        now = clock.now()
        c = f.community
        stranded_since = clock.today() - dt.timedelta(days=STRANDED_DAYS)
        rows = list(
            Appeal.objects.filter(status__in=Appeal.OPEN_STATUSES)
            .filter(Q(routed_community=c) | Q(routed_community__isnull=True, community=c)
                    | Q(routed_community__isnull=True, community__isnull=True, resident__community=c))
            .filter(Q(popup__popup_type=f.popup_type) | Q(popup__isnull=True, popup_type_claimed=f.popup_type)
                    if f.popup_type else Q())
            .values("status", "category", "channel")
            .annotate(n=Count("id"),
                      breached=Count("id", filter=Q(sla_breached_at__isnull=False) | Q(sla_due_at__lt=now)),
                      escalated=Count("id", filter=Q(escalated_at__isnull=False)),
                      repeated=Count("id", filter=Q(repeat_count__gt=0)), repeats=Sum("repeat_count"),
                      stranded_long=Count("id", filter=Q(currently_outside_city=True,
                                                         outside_since__lte=stranded_since)))
            .order_by())
    else:
        rows = _summary_rows(OpenAppealFigure, f, ("status", "category", "channel", *APPEAL_MEASURES))
    return {**{("total" if m == "n" else m): _total(rows, m) for m in APPEAL_MEASURES},
            "by_status": _sum_by(rows, "status"), "by_category": _sum_by(rows, "category"),
            "by_channel": _sum_by(rows, "channel")}


def open_tasks(f: DashboardFilters) -> dict:
    if f.community is not None:
        rows = list(ClearanceTask.objects.filter(state__in=ClearanceTask.OPEN_STATES, community=f.community)
                    .filter(_popup_type_q(f)).values("state")
                    .annotate(n=Count("id"), overdue=Count("id", filter=Q(
                        sla_due_at__lt=clock.now(), state__in=ClearanceTask.AWAITING_STATES,
                        on_hold_since__isnull=True)))  # on hold: the SLA clock stands
                    .order_by())
    else:
        rows = _summary_rows(OpenTaskFigure, f, ("state", "n", "overdue"))
    return {"total": _total(rows), "overdue": _total(rows, "overdue"), "by_state": _sum_by(rows, "state")}


def deliveries(f: DashboardFilters) -> dict:
    if f.community is not None:
        sms = (SmsMessage.objects.filter(state__in=["undelivered", "dead"], resident__community=f.community,
                                         created_at__gte=clock.now() - dt.timedelta(days=SMS_DAYS))
               .values("state").annotate(n=Count("id")).order_by())
        out = (OutboxDelivery.objects.filter(state__in=["failed", "dead"], resident__community=f.community)
               .values("state").annotate(n=Count("id")).order_by())
        figures = {("sms_dead" if r["state"] == "dead" else "sms_undelivered"): r["n"] for r in sms}
        for state, n in [*((r["state"], r["n"]) for r in out), *_community_batches_failing(f.community.pk)]:
            metric = "outbox_dead" if state == "dead" else "outbox_failed"
            figures[metric] = figures.get(metric, 0) + n
        return figures
    rows = _summary_rows(DeliveryFigure, f, ("metric", "n"), typed=False)
    batch = {DeliveryFigure.Metric.OUTBOX_BATCH_FAILED: DeliveryFigure.Metric.OUTBOX_FAILED,
             DeliveryFigure.Metric.OUTBOX_BATCH_DEAD: DeliveryFigure.Metric.OUTBOX_DEAD}
    if f.district is None:  # the city: each batch once, from its district-less row
        rows = [r for r in rows if r["metric"] not in batch]
    else:  # a district: the batches reaching it (the district-less rows are filtered out)
        rows = [{**r, "metric": batch.get(r["metric"], r["metric"])} for r in rows]
    return _sum_by(rows, "metric")


_COMMUNITY_BATCHES = """
SELECT d.state, count(*)
FROM healthkit_outboxdelivery d
JOIN healthkit_outboxrecord o ON o.id = d.record_id
WHERE d.state IN ('failed', 'dead') AND d.resident_id IS NULL
  AND EXISTS (SELECT 1 FROM communities_resident r WHERE r.id = ANY(o.resident_ids) AND r.community_id = %s)
GROUP BY d.state
"""


def _community_batches_failing(community_id: int) -> list[tuple[str, int]]:
    """Failing batch deliveries reaching one community: a batch holds its residents in an array,
    not on the delivery row, so the ORM's resident filter above cannot see them."""
    with connection.cursor() as cursor:
        cursor.execute(_COMMUNITY_BATCHES, [community_id])
        return list(cursor.fetchall())


def _community_history(sql: str, f: DashboardFilters, since: dt.datetime, unit: str = "day") -> list[tuple]:
    """One community's history rows, aggregated live by the refresh's own statement limited to
    its rows (indexed: a community's popups and appeals are a few thousand at city scale; per
    community summary rows would be nearly as many as the popups)."""
    with connection.cursor() as cursor:
        cursor.execute(services.scoped(sql, services.COMMUNITY_SCOPE, unit),
                       {"tz": settings.TIME_ZONE, "since": since, "community": f.community.pk})
        rows = cursor.fetchall()
    # trend rows: (metric, grain, bucket, popup_type, district, n);
    # duration rows: (measure, key, by_person, popup_type, district, day, bin, n)
    return [row for row in rows if not f.popup_type or row[3] == f.popup_type]


def _trend_rows(f: DashboardFilters, grain: str, start: dt.datetime, end: dt.datetime) -> list[tuple]:
    """(metric, bucket, n) of one grain in [start, end): the community's live, else the summary's."""
    if f.community is not None:
        out: dict[tuple, int] = defaultdict(int)
        for metric, _grain, bucket, _type, _district, n in _community_history(services.TREND_SELECT, f, start, grain):
            if start <= bucket < end:
                out[(metric, bucket)] += n
        return [(metric, bucket, n) for (metric, bucket), n in out.items()]
    qs = _by_district(TrendPoint.objects.filter(grain=grain, bucket__gte=start, bucket__lt=end), f)
    return list(qs.values_list("metric", "bucket").annotate(total=Sum("n")).order_by())


def trend_days(f: DashboardFilters) -> dict:
    """{metric: [n per day from date_from to date_to]} and the day labels."""
    days = [f.date_from + dt.timedelta(days=i) for i in range((f.date_to - f.date_from).days + 1)]
    series: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for metric, bucket, n in _trend_rows(f, TrendPoint.Grain.DAY, f.starts, f.ends):
        series[metric][timezone.localdate(bucket)] = n
    return {"labels": days,
            "series": {m: [series[m].get(d, 0) for d in days] for m in TrendPoint.Metric.values}}


def trend_hours(f: DashboardFilters, *, now: dt.datetime | None = None) -> dict:
    """The last 48 hours up to the end of the date range (or now, if sooner)."""
    end = min(now or clock.now(), f.ends)
    end = timezone.localtime(end).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    hours = [end - dt.timedelta(hours=HOURS_SHOWN - i) for i in range(HOURS_SHOWN)]
    series: dict[str, dict[dt.datetime, int]] = defaultdict(dict)
    for metric, bucket, n in _trend_rows(f, TrendPoint.Grain.HOUR, hours[0], end):
        series[metric][bucket] = n
    return {"labels": hours,
            "series": {m: [series[m].get(h, 0) for h in hours] for m in TrendPoint.Metric.values}}


def bin_minutes(b: int) -> float:
    """The middle of bin b (see services._BIN): minutes."""
    return 2 ** ((b + 0.5) / 4) - 1


def percentiles(bins: dict[int, int], qs: tuple[float, ...] = (0.5, 0.9)) -> tuple[float | None, ...]:
    total = sum(bins.values())
    if not total:
        return tuple(None for _ in qs)
    out = []
    for q in qs:
        rank, seen = math.ceil(q * total), 0
        for b in sorted(bins):
            seen += bins[b]
            if seen >= rank:
                out.append(bin_minutes(b))
                break
    return tuple(out)


@dataclass(frozen=True)
class TimeRow:
    measure: str
    label: str
    n: int
    p50: float | None
    p90: float | None
    group: dict  # what the row is about (for drill-down links)


def durations(f: DashboardFilters) -> list[TimeRow]:
    """Median and p90 of each measure, overall and per popup type / source / who lifted."""
    if f.community is not None:
        rows = [(m, key, by_person, popup_type, b, n)
                for m, key, by_person, popup_type, _district, day, b, n
                in _community_history(services.DURATIONS_SELECT, f, f.starts)
                if f.date_from <= day <= f.date_to]
    else:
        qs = _by_district(DurationBin.objects.filter(day__gte=f.date_from, day__lte=f.date_to), f)
        rows = list(qs.values_list("measure", "key", "by_person", "popup_type", "bin").annotate(total=Sum("n"))
                    .order_by())
    bins: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for m, key, by_person, popup_type, b, n in rows:
        bins[(m, "all", None)][b] += n
        if m != DurationBin.Measure.APPEAL_DECISION:
            bins[(m, "type", popup_type)][b] += n
            bins[(m, "source", key)][b] += n
            bins[(m, "by_person", by_person)][b] += n
    types, sources = dict(PopupType.choices), dict(PopupCase.Source.choices)
    labels = {"all": lambda v: _("All"), "type": lambda v: str(types.get(v, v)),
              "source": lambda v: str(sources.get(v, v)),
              "by_person": lambda v: _("Lifted by a person") if v else _("Lifted automatically")}
    out = []
    for (measure, kind, value), b in sorted(bins.items(), key=lambda kv: (kv[0][0], kv[0][1] != "all", str(kv[0]))):
        p50, p90 = percentiles(b)
        out.append(TimeRow(measure=measure, label=labels[kind](value), n=sum(b.values()), p50=p50, p90=p90,
                           group={kind: value}))
    return out


def lifts_split(f: DashboardFilters, days: dict | None = None) -> dict:
    """How many lifts in the range were automatic and how many by a person (the day trend's
    sums: pass it when already read)."""
    series = (days or trend_days(f))["series"]
    totals = {m: sum(series[m]) for m in (TrendPoint.Metric.LIFTED_AUTO, TrendPoint.Metric.LIFTED_PERSON)}
    return {m: n for m, n in totals.items() if n}


def district_names() -> dict[int, str]:
    return dict(District.objects.values_list("pk", "name"))


def community_names_codes(ids: list[int]) -> tuple[dict[int, str], dict[int, str]]:
    """Names and codes of some communities, in one query."""
    rows = Community.objects.filter(pk__in=[i for i in ids if i]).values_list("pk", "name", "code")
    return {pk: name for pk, name, _code in rows}, {pk: code for pk, _name, code in rows}


def dashboard(f: DashboardFilters) -> dict:
    """Everything the page shows, in a handful of small queries."""
    days = trend_days(f)
    return {
        "refresh": last_refresh(), "popups": open_popups(f), "appeals": open_appeals(f), "tasks": open_tasks(f),
        "deliveries": deliveries(f), "days": days, "hours": trend_hours(f), "times": durations(f),
        "lifts": lifts_split(f, days),
    }

