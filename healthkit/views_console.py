"""Staff console landing pages of the popup core."""

import datetime as dt

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import DetailView, TemplateView

from communities.forms import AuditSearchForm
from communities.models import AuditAlert, PersonalDataAccess, User
from communities.selectors import (
    AuditFilters,
    audit_alerts_open,
    audit_search,
    resident_by_id_number,
    residents_visible_to,
)
from communities.services import access_log, audit_alert_acknowledge
from healthkit.filtering import FilteredView
from healthkit.forms import PopupListFilterForm
from healthkit.models import PopupCase, PopupType
from healthkit.permissions import RoleRequiredMixin, has_role
from healthkit.selectors import (
    open_popups_by_type,
    popup_access,
    popup_event_lines,
    popup_explain,
    popup_list,
    popup_page,
)


class LandingView(TemplateView):
    template_name = "landing.html"


class ConsoleHomeView(RoleRequiredMixin, TemplateView):
    template_name = "console/home.html"
    allowed_roles = RoleRequiredMixin.allowed_roles | {"venue_manager"}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        labels = dict(PopupType.choices)
        context["open_by_type"] = [
            {**row, "label": labels.get(row["popup_type"], row["popup_type"])}
            for row in open_popups_by_type(user=self.request.user)
        ]
        if has_role(self.request.user, AUDIT_ROLES):
            context["audit_alerts_open"] = audit_alerts_open().count()
        return context


class PopupListView(FilteredView, RoleRequiredMixin, View):
    """Popups by state, type, place and dates (masked residents, the viewer's scope), newest
    first; a page at a time by id so a million popups cost no count."""

    page_size = 50
    filter_form_class = PopupListFilterForm
    cursor_params = ("before",)

    def get(self, request):
        form, filters = self.read_filters()
        rows = []
        if filters is not None:
            qs = popup_list(residents=residents_visible_to(request.user), filters=filters)
            rows = popup_page(qs, before=self.pages["before"], size=self.page_size + 1)
        query = request.GET.copy()
        query.pop("before", None)
        next_query = ""
        if len(rows) > self.page_size:
            rows = rows[: self.page_size]
            query["before"] = rows[-1].pk
            next_query = query.urlencode()
            query.pop("before")
        return render(request, "console/popup_list.html", {
            "form": form, "rows": rows, "next_query": next_query, "query": query.urlencode(),
        })


class PopupCaseDetailView(RoleRequiredMixin, DetailView):
    """One popup with its 'why' (event log). Scoped to residents the viewer may see; audited."""

    template_name = "console/popup_detail.html"
    context_object_name = "case"

    def get_object(self, queryset=None) -> PopupCase:
        return popup_access(user=self.request.user, pk=self.kwargs["pk"], where="console")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["events"] = [(e, popup_event_lines(e))
                             for e in self.object.events.select_related("actor").order_by("at", "id")]
        context["why"] = popup_explain(self.object)
        return context


AUDIT_ROLES = {User.Role.SUPERVISOR, User.Role.ADMINISTRATOR}
AUDIT_PAGE_ROWS = 200


class AuditView(RoleRequiredMixin, View):
    """Supervisors' page of the access audit: open enumeration alerts, and a search by staff
    account, resident (typed ID number, matched through its keyed hash, posted and never shown
    back) and time. Searching by a resident is itself an audited look-up."""

    allowed_roles = AUDIT_ROLES

    def get(self, request):
        return self._render(request, AuditSearchForm(), audit_search(AuditFilters()))

    def post(self, request):
        form = AuditSearchForm(request.POST)
        if not form.is_valid():
            return self._render(request, form, PersonalDataAccess.objects.none())
        data = form.cleaned_data
        resident = None
        if data["id_number"]:
            resident = resident_by_id_number(data["id_number"])
            access_log(actor=request.user, resident=resident, action=PersonalDataAccess.Action.LOOKUP,
                       context="audit:search")
        filters = AuditFilters(
            staff=data["staff"].strip(), resident=resident, action=data["action"],
            since=AuditSearchForm.start_of(data["since"]),
            until=AuditSearchForm.start_of(data["until"] + dt.timedelta(days=1)) if data["until"] else None)
        rows = PersonalDataAccess.objects.none() if data["id_number"] and resident is None else audit_search(filters)
        # What was typed comes back except the ID number (the field never renders a value).
        shown = AuditSearchForm(initial={k: v for k, v in data.items() if k != "id_number"})
        return self._render(request, shown, rows, searched=True, by_resident=bool(data["id_number"]))

    def _render(self, request, form, rows, **extra):
        response = render(request, "console/audit.html", {
            "form": form, "rows": rows[:AUDIT_PAGE_ROWS], "limit": AUDIT_PAGE_ROWS,
            "alerts": audit_alerts_open()[:50], **extra,
        })
        response["Cache-Control"] = "no-store"
        return response


class AuditAlertAcknowledgeView(RoleRequiredMixin, View):
    allowed_roles = AUDIT_ROLES

    def post(self, request, pk: int):
        audit_alert_acknowledge(alert=get_object_or_404(AuditAlert, pk=pk), actor=request.user)
        messages.success(request, _("Alert acknowledged."))
        return redirect("console-audit")
