"""The admin's date hierarchy without SELECT DISTINCT over every row (healthkit.admin_site).

Django's `date_hierarchy` lists the years, months or days that have rows with one
`SELECT DISTINCT date_trunc(...)` over every matching row: about a second at a million rows, on
every changelist view. Here its own function renders the same links, but each level's choices are
every period between the first and the last date of the rows shown (a MIN and a MAX, which an
index on the field answers), so a period without rows may be offered (it lists nothing)."""

from __future__ import annotations

import datetime as dt

from django import template
from django.contrib.admin.templatetags.admin_list import date_hierarchy
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.db.models import Max, Min
from django.utils import timezone

register = template.Library()


class _RangeDates:
    """Stands in for the changelist's queryset where date_hierarchy reads it."""

    def __init__(self, queryset) -> None:
        self._queryset = queryset
        self._bounds: dict | None = None

    def aggregate(self, *args, **kwargs):
        result = self._queryset.aggregate(*args, **kwargs)
        if set(kwargs) == {"first", "last"}:  # date_hierarchy's own MIN and MAX: read once
            self._bounds = result
        return result

    def dates(self, field_name: str, kind: str, order: str = "ASC") -> list[dt.date]:
        return self._periods(field_name, kind)

    def datetimes(self, field_name: str, kind: str, order: str = "ASC", tzinfo=None) -> list[dt.date]:
        return self._periods(field_name, kind)

    def _periods(self, field_name: str, kind: str) -> list[dt.date]:
        bounds = self._bounds or self._queryset.aggregate(first=Min(field_name), last=Max(field_name))
        first, last = bounds["first"], bounds["last"]
        if first is None or last is None:
            return []
        if isinstance(first, dt.datetime):
            first, last = (timezone.localtime(v).date() if timezone.is_aware(v) else v.date() for v in (first, last))
        if kind == "year":
            return [dt.date(year, 1, 1) for year in range(first.year, last.year + 1)]
        if kind == "month":
            months, (year, month) = [], (first.year, first.month)
            while (year, month) <= (last.year, last.month):
                months.append(dt.date(year, month, 1))
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            return months
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


class _ChangeListView:
    """The changelist as date_hierarchy reads it, its queryset replaced by _RangeDates."""

    def __init__(self, cl) -> None:
        self._cl = cl
        self.queryset = _RangeDates(cl.queryset)

    def __getattr__(self, name: str):
        return getattr(self._cl, name)


def bounded_date_hierarchy(cl):
    return date_hierarchy(_ChangeListView(cl))


@register.tag(name="bounded_date_hierarchy")
def bounded_date_hierarchy_tag(parser, token):
    return InclusionAdminNode(parser, token, func=bounded_date_hierarchy, template_name="date_hierarchy.html",
                              takes_context=False)
