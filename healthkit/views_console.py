"""Staff console landing pages of the popup core."""

from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import render
from django.views import View
from django.views.generic import DetailView, TemplateView

from communities.models import PersonalDataAccess
from communities.selectors import residents_visible_to
from communities.services import access_log
from healthkit.forms import PopupListFilterForm
from healthkit.models import PopupCase, PopupType
from healthkit.permissions import RoleRequiredMixin
from healthkit.selectors import popup_explain, popup_list


class LandingView(TemplateView):
    template_name = "landing.html"


class ConsoleHomeView(RoleRequiredMixin, TemplateView):
    template_name = "console/home.html"
    allowed_roles = RoleRequiredMixin.allowed_roles | {"venue_manager"}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        open_popups = PopupCase.objects.filter(
            state__in=PopupCase.OPEN_STATES, resident__in=residents_visible_to(self.request.user)
        )
        labels = dict(PopupType.choices)
        context["open_by_type"] = [
            {**row, "label": labels.get(row["popup_type"], row["popup_type"])}
            for row in open_popups.values("popup_type").annotate(n=Count("id")).order_by("popup_type")
        ]
        return context


class PopupListView(RoleRequiredMixin, View):
    """Popups by state, type, place and dates (masked residents, the viewer's scope), newest
    first; a page at a time by id so a million popups cost no count."""

    page_size = 50

    def get(self, request):
        form = PopupListFilterForm(request.GET or None)
        qs = popup_list(residents=residents_visible_to(request.user), filters=form.filters())
        before = request.GET.get("before", "")
        if before.isascii() and before.isdigit():
            qs = qs.filter(pk__lt=int(before))
        rows = list(qs[: self.page_size + 1])
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
        case = (
            PopupCase.objects.select_related("resident__community__street__district", "policy")
            .filter(pk=self.kwargs["pk"], resident__in=residents_visible_to(self.request.user))
            .first()
        )
        if case is None:
            raise PermissionDenied
        access_log(actor=self.request.user, resident=case.resident,
                   action=PersonalDataAccess.Action.VIEW, context=f"popup:{case.pk}")
        return case

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["events"] = self.object.events.select_related("actor").order_by("at", "id")
        context["why"] = popup_explain(self.object)
        return context
