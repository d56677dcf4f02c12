"""The supervisor's dashboard. Thin: the form reads the filters, selectors give the figures, this
module only lays them out as panels (a chart, its numbers as a table, a link behind each number).
Chart data goes to the page as a JSON data block (json_script) read by a static script: no inline
script, so the Content-Security-Policy needs no exception."""

from html import escape
from urllib.parse import urlencode

from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views import View

from appeals.clearance.models import ClearanceTask
from appeals.models import Appeal
from appeals.oversight import selectors
from appeals.oversight.forms import DashboardFilterForm
from appeals.oversight.models import DeliveryFigure, DurationBin, TrendPoint
from healthkit.filtering import FilteredView
from healthkit.models import PopupCase, PopupType
from healthkit.permissions import RoleRequiredMixin


def human_minutes(minutes: float | None) -> str:
    if minutes is None:
        return "—"
    if minutes < 90:
        return _("%(n)d min") % {"n": round(minutes)}
    if minutes < 48 * 60:
        return _("%(n).1f h") % {"n": minutes / 60}
    return _("%(n).1f days") % {"n": minutes / 1440}


class Links:
    """URLs of the queues and lists behind each figure, carrying the dashboard's filters."""

    def __init__(self, f: selectors.DashboardFilters):
        self.f = f
        self._paths: dict[str, str] = {}

    def _url(self, name: str, params: dict) -> str:
        # a 90-day view has some 500 links: resolve each list's path once
        if name not in self._paths:
            self._paths[name] = reverse(name)
        clean = {k: v for k, v in params.items() if v not in (None, "", False)}
        return self._paths[name] + ("?" + urlencode(clean) if clean else "")

    def _place(self, community_key: str = "community") -> dict:
        f = self.f
        if f.community is not None:
            return {community_key: f.community.code if community_key == "community" else f.community.pk}
        return {"district": f.district.pk if f.district else None}

    def popups(self, **params) -> str:
        return self._url("console-popups", {**self._place(), "type": self.f.popup_type, **params})

    def appeals(self, **params) -> str:
        return self._url("appeals:queue", {**self._place(), "popup_type": self.f.popup_type, **params})

    def tasks(self, **params) -> str:
        place = {"community": self.f.community.pk} if self.f.community else \
            {"district": self.f.district.pk if self.f.district else None}
        return self._url("clearance:worklist", {**place, "popup_type": self.f.popup_type, **params})

    def range(self, prefix: str) -> dict:
        return {f"{prefix}_after": self.f.date_from.isoformat(), f"{prefix}_before": self.f.date_to.isoformat()}


def _rows_html(rows: list[dict], columns: int) -> str:
    """The table's body, escaped here: a 90-day view has some 700 cells, and a template loop over
    them took more time than reading the figures. The standard library's escape, which Django's
    calls (same output) behind a lazy-string wrapper that costs more than the escaping."""
    if not rows:
        return format_html('<tr><td colspan="{}" class="muted">{}</td></tr>', columns + 1, _("None"))
    parts = []
    for row in rows:
        cells = "".join(
            f'<td class="num"><a href="{escape(href)}">{escape(str(value))}</a></td>' if href
            else f'<td class="num">{escape(str(value))}</td>' for value, href in row["cells"])
        parts.append(f'<tr><th scope="row">{escape(str(row["label"]))}</th>{cells}</tr>')
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped


def _panel(pid: str, title: str, chart_type: str, columns: list[str], rows: list[dict],
           horizontal: bool = False) -> dict:
    """rows: [{"label": str, "href": str|None, "cells": [(value, href|None), ...]}]. The chart is
    drawn from the same rows, so the table is exactly the chart's numbers."""
    return {
        "id": pid, "title": title, "columns": columns, "rows": rows, "rows_html": _rows_html(rows, len(columns)),
        "chart": {"id": pid, "type": chart_type, "horizontal": horizontal,
                  "labels": [r["label"] for r in rows],
                  "datasets": [{"label": col, "data": [r["cells"][i][0] for r in rows]}
                               for i, col in enumerate(columns)]},
    }


_DAY = "__DAY__"  # stands for a day in a link (urlencode leaves it as it is)


def build_panels(data: dict, links: Links) -> list[dict]:
    types, states, sources = dict(PopupType.choices), dict(PopupCase.State.choices), dict(PopupCase.Source.choices)
    popups, appeals, tasks = data["popups"], data["appeals"], data["tasks"]
    count = _("Count")
    panels = []

    days, hours = data["days"], data["hours"]
    metrics = TrendPoint.Metric
    day_links = {
        metrics.POPUPS_RAISED: lambda d: links.popups(raised_after=d, raised_before=d, state="all"),
        metrics.LIFTED_AUTO: lambda d: links.popups(lifted_after=d, lifted_before=d, state="lifted", lifted_by="auto"),
        metrics.LIFTED_PERSON: lambda d: links.popups(lifted_after=d, lifted_before=d, state="lifted",
                                                      lifted_by="person"),
        metrics.APPEALS_FILED: lambda d: links.appeals(queue="all", filed_after=d, filed_before=d),
        metrics.APPEALS_CLOSED: lambda d: links.appeals(queue="closed", closed_after=d, closed_before=d),
    }
    # a 90-day view has 450 such links: build each metric's once, then put each day in
    day_url = {m: day_links[m](_DAY) for m in metrics}
    panels.append(_panel("trend-days", _("Per day"), "line", [str(m.label) for m in metrics], [
        {"label": (day := d.isoformat()),
         "cells": [(days["series"][m][i], day_url[m].replace(_DAY, day)) for m in metrics]}
        for i, d in enumerate(days["labels"])]))
    panels.append(_panel("trend-hours", _("Per hour, last 48 hours"), "bar", [str(m.label) for m in metrics], [
        {"label": timezone.localtime(h).strftime("%m-%d %H:00"),
         "cells": [(hours["series"][m][i], None) for m in metrics]}
        for i, h in enumerate(hours["labels"])]))

    panels.append(_panel("popups-type", _("Open popups by type"), "bar", [count], [
        {"label": str(types.get(t, t)), "cells": [(n, links.popups(type=t, state="open"))]}
        for t, n in popups["by_type"].items()], horizontal=True))
    if popups["place_field"] == "district":
        names = selectors.district_names()
        place_rows = [{"label": names.get(k, _("No community on record")),
                       "cells": [(n, links.popups(state="open", district=k) if k else None)]}
                      for k, n in sorted(popups["by_place"].items(), key=lambda kv: -kv[1])]
        place_title = _("Open popups by district")
    else:
        top = sorted(popups["by_place"].items(), key=lambda kv: -kv[1])[:30]
        names, codes = selectors.community_names_codes([k for k, _n in top])
        place_rows = [{"label": names.get(k, _("No community on record")),
                       "cells": [(n, links.popups(state="open", district=None, community=codes.get(k)) if k else None)]}
                      for k, n in top]
        place_title = _("Open popups by community (30 with most)")
    panels.append(_panel("popups-place", place_title, "bar", [count], place_rows, horizontal=True))
    panels.append(_panel("popups-source", _("Open popups by state and source"), "bar", [count], [
        *[{"label": str(states.get(s, s)), "cells": [(n, links.popups(state=s))]} for s, n in popups["by_state"].items()],
        *[{"label": str(sources.get(s, s)), "cells": [(n, links.popups(state="open", source=s))]}
          for s, n in popups["by_source"].items()]], horizontal=True))

    status_queue = {"new": "new", "waiting_resident": "waiting", "routed": "routed"}
    panels.append(_panel("appeals-status", _("Open appeals by stage"), "bar", [count], [
        {"label": str(Appeal.Status(s).label) if s in Appeal.Status.values else s,
         "cells": [(n, links.appeals(queue=status_queue.get(s, "open"), status=s))]}
        for s, n in appeals["by_status"].items()], horizontal=True))
    panels.append(_panel("appeals-category", _("Open appeals by category"), "bar", [count], [
        {"label": str(Appeal.Category(c).label) if c in Appeal.Category.values else c,
         "cells": [(n, links.appeals(queue="open", category=c))]}
        for c, n in appeals["by_category"].items()], horizontal=True))
    panels.append(_panel("appeals-channel", _("Open appeals by channel"), "bar", [count], [
        {"label": str(Appeal.Channel(c).label) if c in Appeal.Channel.values else c,
         "cells": [(n, links.appeals(queue="open", channel=c))]}
        for c, n in appeals["by_channel"].items()], horizontal=True))
    panels.append(_panel("tasks-state", _("Open clearance tasks by state"), "bar", [count], [
        {"label": str(ClearanceTask.State(s).label) if s in ClearanceTask.State.values else s,
         "cells": [(n, links.tasks(state=s))]}
        for s, n in tasks["by_state"].items()], horizontal=True))
    return panels


def build_figures(data: dict, links: Links, user=None) -> list[dict]:
    """The headline numbers, each with the list behind it; the delivery figures link to the
    admin's lists only for a viewer allowed to open them (`user`; None: no such links), so no
    supervisor is shown a link that answers 403."""
    popups, appeals, tasks, deliveries = data["popups"], data["appeals"], data["tasks"], data["deliveries"]
    lifts = data["lifts"]

    def admin_list(model: str, query: str) -> str | None:
        if user is None or not user.has_perm(f"healthkit.view_{model}"):
            return None
        return reverse(f"admin:healthkit_{model}_changelist") + query

    return [
        {"label": _("Active popups"), "n": popups["total"], "href": links.popups(state="open")},
        {"label": _("Open appeals"), "n": appeals["total"], "href": links.appeals(queue="open")},
        {"label": _("Appeals past their SLA"), "n": appeals["breached"], "href": links.appeals(queue="breached")},
        {"label": _("Appeals escalated"), "n": appeals["escalated"], "href": links.appeals(queue="open", escalated="true")},
        {"label": _("Appeals with repeats folded in"), "n": appeals["repeated"],
         "note": _("%(n)d repeats in all") % {"n": appeals["repeats"]},
         "href": links.appeals(queue="open", repeated="true")},
        {"label": _("Residents stranded outside over a month"), "n": appeals["stranded_long"],
         "href": links.appeals(queue="open", stranded="true")},
        {"label": _("Open clearance tasks"), "n": tasks["total"], "href": links.tasks(state="open")},
        {"label": _("Clearance tasks overdue"), "n": tasks["overdue"], "href": links.tasks(state="open", overdue="on")},
        {"label": _("SMS not delivered (7 days)"),
         "n": deliveries.get(DeliveryFigure.Metric.SMS_UNDELIVERED, 0) + deliveries.get(DeliveryFigure.Metric.SMS_DEAD, 0),
         "href": admin_list("smsmessage", "?state__in=undelivered,dead")},
        {"label": _("Downstream deliveries failing"),
         "n": deliveries.get(DeliveryFigure.Metric.OUTBOX_FAILED, 0) + deliveries.get(DeliveryFigure.Metric.OUTBOX_DEAD, 0),
         "href": admin_list("outboxdelivery", "?state__in=failed,dead")},
        {"label": _("Lifted automatically (in range)"), "n": lifts.get(TrendPoint.Metric.LIFTED_AUTO, 0),
         "href": links.popups(state="lifted", lifted_by="auto", **links.range("lifted"))},
        {"label": _("Lifted by a person (in range)"), "n": lifts.get(TrendPoint.Metric.LIFTED_PERSON, 0),
         "href": links.popups(state="lifted", lifted_by="person", **links.range("lifted"))},
    ]


def build_times(data: dict, links: Links) -> list[dict]:
    measures = dict(DurationBin.Measure.choices)
    out = []
    for row in data["times"]:
        group = row.group
        if row.measure == DurationBin.Measure.APPEAL_DECISION:
            href = links.appeals(queue="closed", **links.range("closed"))
        else:
            kind, value = next(iter(group.items()))
            extra = {"type": value} if kind == "type" else {"source": value} if kind == "source" else \
                {"lifted_by": "person" if value else "auto"} if kind == "by_person" else {}
            href = links.popups(state="lifted", **links.range("lifted"), **extra)
        out.append({"measure": str(measures.get(row.measure, row.measure)), "label": row.label, "n": row.n,
                    "p50": human_minutes(row.p50), "p90": human_minutes(row.p90), "href": href,
                    "first": not out or out[-1]["measure"] != str(measures.get(row.measure, row.measure))})
    return out


class DashboardView(FilteredView, RoleRequiredMixin, View):
    allowed_roles = set(selectors.SUPERVISING_ROLES)
    template_name = "oversight/dashboard.html"
    filter_form_class = DashboardFilterForm

    def get(self, request):
        form, f = self.read_filters()
        if f is None:  # no figure for filters that could not be read (never the default period's)
            return render(request, self.template_name, {"form": form, "refused": True})
        data = selectors.dashboard(f)
        links = Links(f)
        panels = build_panels(data, links)
        return render(request, self.template_name, {
            "form": form, "filters": f, "refresh": data["refresh"], "figures": build_figures(data, links, request.user),
            "panels": panels, "times": build_times(data, links),
            "charts": [p["chart"] for p in panels], "query": request.GET.urlencode(),
        })
