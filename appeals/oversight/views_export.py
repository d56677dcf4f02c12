"""Exports: the dashboard's figures (no personal data, GET) and the appeal, clearance task and
popup lists as filtered (person-level, masked, scoped to the exporter, POST with a reason and
recorded in the personal-data audit like a reveal)."""

from django import forms
from django.contrib import messages
from django.http import HttpResponseNotAllowed, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from appeals.clearance import selectors as clearance_selectors
from appeals.clearance.forms import WorklistFilterForm
from appeals.clearance.models import ClearanceTask
from appeals.filters import AppealFilter
from appeals.models import Appeal
from appeals.oversight import exports, selectors
from appeals.oversight.forms import DashboardFilterForm
from appeals.oversight.views import Links, build_figures, build_panels, build_times
from appeals.selectors import appeals_visible_to
from communities.models import PersonalDataAccess
from communities.selectors import communities_visible_to, residents_visible_to
from communities.services import access_log
from healthkit.filtering import FilteredView
from healthkit.forms import PopupListFilterForm
from healthkit.inputs import TextFormField
from healthkit.models import PopupCase
from healthkit.permissions import STAFF_ROLES, RoleRequiredMixin
from healthkit.selectors import popup_list
from healthkit.spreadsheet import ChoiceLabels


class SummaryExportView(FilteredView, RoleRequiredMixin, View):
    """The dashboard's numbers as filtered: headline figures, times, and each chart's table."""

    allowed_roles = set(selectors.SUPERVISING_ROLES)
    filter_form_class = DashboardFilterForm

    def get(self, request):
        query = request.GET.copy()
        fmt = query.pop("format", ["csv"])
        form, f = self.read_filters(query)
        if f is None or fmt not in (["csv"], ["xlsx"]):
            if fmt not in (["csv"], ["xlsx"]):
                form.add_error(None, _("Choose CSV or XLSX."))
            return self.refused_export(form, reverse("oversight:dashboard"))
        data = selectors.dashboard(f)
        links = Links(f)
        sheets = [
            (_("Figures"), [_("Figure"), _("Count")], [[fig["label"], fig["n"]] for fig in build_figures(data, links)]),
            (_("Times"), [_("Measure"), _("Group"), _("Count"), _("Median"), _("90th percentile")],
             [[t["measure"], t["label"], t["n"], t["p50"], t["p90"]] for t in build_times(data, links)]),
        ]
        for panel in build_panels(data, links):
            sheets.append((panel["title"], ["", *panel["columns"]],
                           [[row["label"], *[value for value, _href in row["cells"]]] for row in panel["rows"]]))
        return exports.response(fmt[0], f"dashboard-{f.date_from}-{f.date_to}", sheets)


class ExportForm(forms.Form):
    reason = TextFormField(max_length=200, min_length=4, label=gettext_lazy("Reason"))
    format = forms.ChoiceField(choices=[("csv", "CSV"), ("xlsx", "XLSX")])
    query = TextFormField(max_length=2000, required=False)


class _PersonExport(FilteredView, RoleRequiredMixin, View):
    """POST only: the export is an act on personal data, with a reason, audited once per file.
    The list's filters come as its query string (`query`) and are read as the list reads them:
    filters it cannot read export nothing (never the whole list) and lead back to it."""

    name = ""
    back = ""

    def get(self, request):
        return HttpResponseNotAllowed(["POST"])

    def post(self, request):
        form = ExportForm(request.POST)
        # Re-encoded: whatever was posted, the way back is only ever a query string of the list.
        back = self.back + "?" + QueryDict(request.POST.get("query", "")[:2000]).urlencode()
        if not form.is_valid():
            if "reason" in form.errors:
                messages.error(request, _("Please say why you need this list before downloading it."))
            else:  # a format or list address that is not one the page wrote
                messages.error(request, _("This download could not be read, so nothing was exported. "
                                          "Use the download button of the list."))
            return redirect(back)
        query = QueryDict(form.cleaned_data["query"])
        _filter_form, filters = self.read_filters(self.list_query(query))
        if filters is None:
            messages.error(request, _("The list's filters could not be read, so nothing was exported. "
                                      "Correct them and download again."))
            return redirect(back)
        fmt = form.cleaned_data["format"]
        access_log(actor=request.user, resident=None, action=PersonalDataAccess.Action.EXPORT,
                   context=f"export:{self.name}.{fmt}?{form.cleaned_data['query']}"[:120],
                   reason=form.cleaned_data["reason"])
        return exports.response(fmt, f"{self.name}-export", [(self.name, self.header(), self.rows(request, filters))])

    def list_query(self, query: QueryDict) -> QueryDict:
        """The query as the list page reads it."""
        return query

    def header(self) -> list[str]:
        raise NotImplementedError

    def rows(self, request, filters):
        raise NotImplementedError


class AppealsExportView(_PersonExport):
    allowed_roles = STAFF_ROLES
    name = "appeals"
    back = "/console/appeals/"
    filter_form_class = AppealFilter

    def filter_form_kwargs(self) -> dict:
        return {"queryset": appeals_visible_to(self.request.user).select_related(
            "resident", "popup", "community__street__district", "routed_community"), "user": self.request.user}

    def list_query(self, query):
        params = query.copy()
        params.setdefault("queue", "open")
        return params

    def header(self):
        return [_("Reference"), _("Filed"), _("Category"), _("Priority"), _("Status"), _("Channel"), _("Popup type"),
                _("Resident"), _("Contact phone"), _("District"), _("Community"), _("Routed to"), _("SLA due"),
                _("SLA breached"), _("Escalated"), _("Repeats"), _("Closed"), _("Outcome")]

    def rows(self, request, qs):
        label = ChoiceLabels(Appeal)
        for a in qs.order_by("id").iterator(chunk_size=2000):
            yield [a.reference, a.created_at, label(a, "category"), label(a, "priority"),
                   label(a, "status"), label(a, "channel"),
                   a.popup.popup_type if a.popup_id else a.popup_type_claimed, a.person_masked,
                   a.contact_phone_masked, a.community.street.district.name if a.community_id else "",
                   a.community.name if a.community_id else "",
                   a.routed_community.name if a.routed_community_id else "", a.sla_due_at, a.sla_breached_at,
                   a.escalated_at, a.repeat_count, a.closed_at, a.outcome_label if a.outcome else ""]


class TasksExportView(_PersonExport):
    allowed_roles = set(clearance_selectors.WORKER_ROLES)
    name = "clearance-tasks"
    back = "/console/clearance/"
    filter_form_class = WorklistFilterForm

    def filter_form_kwargs(self) -> dict:
        return {"communities": communities_visible_to(self.request.user)[:200]}

    def header(self):
        return [_("Reference"), _("Community"), _("Resident"), _("Phone"), _("Origin"), _("State"), _("Priority"),
                _("Popup type"), _("Appeal"), _("SLA due"), _("Escalated"), _("Opened"), _("Closed")]

    def rows(self, request, filters):
        label = ChoiceLabels(ClearanceTask)
        for t in clearance_selectors.worklist(user=request.user, filters=filters).iterator(chunk_size=2000):
            phone = t.contact_phone_masked or (t.appeal.contact_phone_masked if t.appeal_id else "")
            yield [t.reference, t.community.name, t.resident.masked, phone, label(t, "origin"),
                   label(t, "state"), label(t, "priority"), t.popup.popup_type if t.popup_id else "",
                   t.appeal.reference if t.appeal_id else "", t.sla_due_at, t.escalated_at, t.created_at, t.closed_at]


class PopupsExportView(_PersonExport):
    allowed_roles = STAFF_ROLES
    name = "popups"
    back = "/console/popups/"
    filter_form_class = PopupListFilterForm

    def header(self):
        return [_("Popup"), _("Popup type"), _("State"), _("Source"), _("Resident"), _("District"), _("Community"),
                _("Raised"), _("Ended")]

    def rows(self, request, filters):
        qs = popup_list(residents=residents_visible_to(request.user), filters=filters)
        label = ChoiceLabels(PopupCase)
        for p in qs.iterator(chunk_size=2000):
            community = p.resident.community
            yield [p.pk, p.popup_type, label(p, "state"), label(p, "source"), p.resident.masked,
                   community.street.district.name if community else "", community.name if community else "",
                   p.raised_at, p.lifted_at]
