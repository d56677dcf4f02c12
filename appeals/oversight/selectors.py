"""Reads of the dashboard: every figure comes from the summary tables (a few thousand rows at
city scale), filtered by date range, district, community and popup type."""

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from appeals.oversight.models import (
    DeliveryFigure,
    DurationBin,
    OpenAppealFigure,
    OpenPopupFigure,
    OpenTaskFigure,
    SummaryRefresh,
    TrendPoint,
)
from communities.models import Community, District, User
from healthkit.models import PopupCase, PopupType
from healthkit.permissions import has_role

SUPERVISING_ROLES = (User.Role.SUPERVISOR, User.Role.ADMINISTRATOR)
HOURS_SHOWN = 48


def can_oversee(user: User) -> bool:
    """The dashboard is city-wide: supervisors and administrators only."""
    return has_role(user, SUPERVISING_ROLES)


@dataclass(frozen=True)
class DashboardFilters:
    date_from: dt.date
    date_to: dt.date
    district: District | None = None
    community: Community | None = None
    popup_type: int | None = None

    @classmethod
    def default(cls, today: dt.date | None = None) -> "DashboardFilters":
        today = today or timezone.localdate()
        return cls(date_from=today - dt.timedelta(days=29), date_to=today)

    @property
    def starts(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.date_from, dt.time()))

    @property
    def ends(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.date_to + dt.timedelta(days=1), dt.time()))


def _scoped(qs: QuerySet, f: DashboardFilters, *, typed: bool = True) -> QuerySet:
    if f.community is not None:
        qs = qs.filter(community=f.community)
    elif f.district is not None:
        qs = qs.filter(district=f.district)
    if typed and f.popup_type:
        qs = qs.filter(popup_type=f.popup_type)
    return qs


def _by_district(qs: QuerySet, f: DashboardFilters) -> QuerySet:
    """Trends and times are kept per district: a community's are its district's."""
    district = f.community.street.district_id if f.community is not None else (f.district.pk if f.district else None)
    if district is not None:
        qs = qs.filter(district_id=district)
    if f.popup_type:
        qs = qs.filter(popup_type=f.popup_type)
    return qs


def _grouped(qs: QuerySet, field: str, total: str = "n") -> dict:
    return {row[field]: row["total"] for row in qs.values(field).annotate(total=Sum(total)).order_by(field)}


def last_refresh() -> SummaryRefresh | None:
    return SummaryRefresh.objects.order_by("-as_of").first()


def open_popups(f: DashboardFilters) -> dict:
    qs = _scoped(OpenPopupFigure.objects.all(), f)
    by_place_field = "community" if f.district is not None or f.community is not None else "district"
    return {
        "total": qs.aggregate(t=Sum("n"))["t"] or 0,
        "by_type": _grouped(qs, "popup_type"),
        "by_state": _grouped(qs, "state"),
        "by_source": _grouped(qs, "source"),
        "place_field": by_place_field,
        "by_place": _grouped(qs, by_place_field),
    }


def open_appeals(f: DashboardFilters) -> dict:
    qs = _scoped(OpenAppealFigure.objects.all(), f)
    totals = qs.aggregate(total=Sum("n"), breached=Sum("breached"), escalated=Sum("escalated"),
                          repeated=Sum("repeated"), repeats=Sum("repeats"), stranded_long=Sum("stranded_long"))
    return {
        **{k: v or 0 for k, v in totals.items()},
        "by_status": _grouped(qs, "status"),
        "by_category": _grouped(qs, "category"),
        "by_channel": _grouped(qs, "channel"),
    }


def open_tasks(f: DashboardFilters) -> dict:
    qs = _scoped(OpenTaskFigure.objects.all(), f)
    totals = qs.aggregate(total=Sum("n"), overdue=Sum("overdue"))
    return {"total": totals["total"] or 0, "overdue": totals["overdue"] or 0, "by_state": _grouped(qs, "state")}


def deliveries(f: DashboardFilters) -> dict:
    qs = _scoped(DeliveryFigure.objects.all(), f, typed=False)
    return dict(_grouped(qs, "metric"))


def trend_days(f: DashboardFilters) -> dict:
    """{metric: [n per day from date_from to date_to]} and the day labels."""
    days = [f.date_from + dt.timedelta(days=i) for i in range((f.date_to - f.date_from).days + 1)]
    qs = _by_district(TrendPoint.objects.filter(grain=TrendPoint.Grain.DAY, bucket__gte=f.starts, bucket__lt=f.ends),
                      f)
    series: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for row in qs.values("metric", "bucket").annotate(total=Sum("n")):
        series[row["metric"]][timezone.localdate(row["bucket"])] = row["total"]
    return {"labels": days,
            "series": {m: [series[m].get(d, 0) for d in days] for m in TrendPoint.Metric.values}}


def trend_hours(f: DashboardFilters, *, now: dt.datetime | None = None) -> dict:
    """The last 48 hours up to the end of the date range (or now, if sooner)."""
    end = min(now or timezone.now(), f.ends)
    end = timezone.localtime(end).replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    hours = [end - dt.timedelta(hours=HOURS_SHOWN - i) for i in range(HOURS_SHOWN)]
    qs = _by_district(TrendPoint.objects.filter(grain=TrendPoint.Grain.HOUR, bucket__gte=hours[0], bucket__lt=end),
                      f)
    series: dict[str, dict[dt.datetime, int]] = defaultdict(dict)
    for row in qs.values("metric", "bucket").annotate(total=Sum("n")):
        series[row["metric"]][row["bucket"]] = row["total"]
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
    qs = _by_district(DurationBin.objects.filter(day__gte=f.date_from, day__lte=f.date_to), f)
    bins: dict[tuple, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    rows = qs.values("measure", "key", "by_person", "popup_type", "bin").annotate(total=Sum("n"))
    for row in rows:
        m, b, n = row["measure"], row["bin"], row["total"]
        bins[(m, "all", None)][b] += n
        if m != DurationBin.Measure.APPEAL_DECISION:
            bins[(m, "type", row["popup_type"])][b] += n
            bins[(m, "source", row["key"])][b] += n
            bins[(m, "by_person", row["by_person"])][b] += n
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


def lifts_split(f: DashboardFilters) -> dict:
    """How many lifts in the range were automatic and how many by a person."""
    qs = _by_district(TrendPoint.objects.filter(grain=TrendPoint.Grain.DAY, bucket__gte=f.starts, bucket__lt=f.ends,
                                                metric__in=[TrendPoint.Metric.LIFTED_AUTO,
                                                            TrendPoint.Metric.LIFTED_PERSON]), f)
    return _grouped(qs, "metric")


def district_names() -> dict[int, str]:
    return dict(District.objects.values_list("pk", "name"))


def community_names(ids: list[int]) -> dict[int, str]:
    return dict(Community.objects.filter(pk__in=[i for i in ids if i]).values_list("pk", "name"))


def dashboard(f: DashboardFilters) -> dict:
    """Everything the page shows, in a handful of small queries."""
    return {
        "refresh": last_refresh(), "popups": open_popups(f), "appeals": open_appeals(f), "tasks": open_tasks(f),
        "deliveries": deliveries(f), "days": trend_days(f), "hours": trend_hours(f), "times": durations(f),
        "lifts": lifts_split(f),
    }

