"""Server-rendered pages: venue list and posters, the visitor register (venue managers), and
risk windows (supervisors). Views only parse input and call selectors/services."""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from communities.models import User
from healthkit import inputs
from healthkit.concurrency import once, once_from, seen_from
from healthkit.errors import ApplicationError
from healthkit.filtering import FilteredView
from healthkit.middleware import retry_after
from healthkit.permissions import RoleRequiredMixin
from healthkit.spreadsheet import csv_stream_response, csv_writer
from healthkit.unsent import action_refused
from venues import poster, selectors, services
from venues.forms import (
    RegisterRangeForm,
    RiskWindowCorrectForm,
    RiskWindowCreateForm,
    RiskWindowFilterForm,
    RiskWindowWithdrawForm,
    VenueSearchForm,
)
from venues.models import RiskWindow

VENUE_ROLES = {*selectors.SUPERVISING, User.Role.VENUE_MANAGER}
# Rows fetched per round trip of the export's server-side cursor.
EXPORT_CHUNK_ROWS = 2000


class VenueListView(FilteredView, RoleRequiredMixin, TemplateView):
    template_name = "venues/venue_list.html"
    allowed_roles = VENUE_ROLES
    filter_form_class = VenueSearchForm
    page_params = ("page",)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        qs = selectors.venues_visible_to(self.request.user).select_related("community", "district")
        search, q = self.read_filters()
        if q is None:
            qs = qs.none()
        elif q:
            qs = qs.filter(name__icontains=q) | qs.filter(code=inputs.venue_code(q))
        context["page"] = Paginator(qs.order_by("name", "id"), 50).get_page(self.page_number())
        context["form"] = search
        context["q"] = q or ""
        context["can_manage_windows"] = selectors.can_manage_windows(self.request.user)
        return context


class VenuePosterView(RoleRequiredMixin, View):
    """The printable poster, PNG or SVG (`?download=1` to save it)."""

    allowed_roles = VENUE_ROLES

    def get(self, request, pk: int, fmt: str):
        if fmt not in ("png", "svg"):
            raise Http404
        venue = selectors.venue_access(user=request.user, venue_id=pk)
        if fmt == "png":
            response = HttpResponse(poster.poster_png(venue), content_type="image/png")
        else:
            response = HttpResponse(poster.poster_svg(venue), content_type="image/svg+xml; charset=utf-8")
        if request.GET.get("download"):
            response["Content-Disposition"] = f'attachment; filename="venue-{venue.code}.{fmt}"'
        return response


class _RegisterFiltered(FilteredView, RoleRequiredMixin):
    allowed_roles = VENUE_ROLES
    filter_form_class = RegisterRangeForm

    def read_filters(self, data=None):
        form, period = super().read_filters(data)
        if not form.is_bound:  # the last day, shown in the form
            form = RegisterRangeForm(initial={"start": period.start, "end": period.end})
        return form, period


class VenueRegisterView(_RegisterFiltered, TemplateView):
    """到访人信息登记簿: visits of one venue over a time range, masked; every view is audited."""

    template_name = "venues/register.html"
    page_params = ("page",)

    def render_to_response(self, context, **response_kwargs):
        # Over the hourly ceiling: the form and the reason, as a 429 saying when the count starts again.
        if "retry_after" in context:
            return retry_after(super().render_to_response(context, status=429, **response_kwargs),
                               context["retry_after"])
        return super().render_to_response(context, **response_kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        venue = selectors.venue_access(user=self.request.user, venue_id=self.kwargs["pk"])
        form, period = self.read_filters()
        context.update(venue=venue, form=form, error=None, period=period)
        if period is not None:
            number = self.page_number()
            try:
                services.venue_register_access(user=self.request.user, venue=venue, start=period.start,
                                               end=period.end, export=False, page=number)
            except services.RegisterRateLimited as exc:
                context.update(error=exc.message, retry_after=exc.retry_after)
                return context
            page = Paginator(selectors.venue_visits(venue=venue, period=period), 100).get_page(number)
            context["page"] = page
            context["query"] = urlencode({"start": timezone.localtime(period.start).strftime("%Y-%m-%dT%H:%M"),
                                          "end": timezone.localtime(period.end).strftime("%Y-%m-%dT%H:%M")})
        return context


class VenueRegisterExportView(_RegisterFiltered, View):
    """The register as CSV (masked), for that venue and range only; audited as an export.

    Every visit of the range (at most 31 days, `register_range`), streamed through a
    server-side cursor a chunk at a time: nothing is cut off and memory stays flat."""

    def get(self, request, pk: int):
        venue = selectors.venue_access(user=request.user, venue_id=pk)
        form, period = self.read_filters()
        if period is None:  # nothing exported, nothing recorded: the form to correct
            return self.refused_export(form, reverse("venues:venue-register", args=[venue.pk]))
        try:
            services.venue_register_access(user=request.user, venue=venue, start=period.start,
                                           end=period.end, export=True)
        except services.RegisterRateLimited as exc:
            return retry_after(HttpResponse(exc.message, status=429, content_type="text/plain; charset=utf-8"),
                               exc.retry_after)
        visits = selectors.venue_visits(venue=venue, period=period)

        writer = csv_writer()

        def rows():
            yield "\ufeff"  # BOM: spreadsheet programs then read the Chinese correctly
            yield writer.writerow([_("Scanned at"), _("Visitor"), _("Venue code")])
            for scan in visits.iterator(chunk_size=EXPORT_CHUNK_ROWS):
                yield writer.writerow([timezone.localtime(scan.scanned_at).strftime("%Y-%m-%d %H:%M:%S"),
                                       scan.resident.masked, venue.code])

        stamp = timezone.localtime(period.start).strftime("%Y%m%d%H%M")
        return csv_stream_response(rows(), filename=f"register-{venue.code}-{stamp}.csv")


def _window_list_context(view, form=None) -> dict:
    request = view.request
    filter_form, state = view.read_filters()
    qs = selectors.risk_windows(state=state or None) if state is not None else RiskWindow.objects.none()
    return {"page": Paginator(qs, 50).get_page(view.page_number()), "filter_form": filter_form,
            "form": form or RiskWindowCreateForm(initial={"venue_code": request.GET.get("venue", "")[:40]})}


def _window_context(window: RiskWindow, *, correct_form=None, withdraw_form=None) -> dict:
    local = timezone.localtime
    return {
        "window": window,
        "events": [(e, selectors.window_event_lines(e))
                   for e in window.events.select_related("actor").order_by("at", "id")],
        "exposures": window.exposures.count(),
        "open_exposures": window.exposures.filter(case__state__in=["active", "under_review"]).count(),
        "correct_form": correct_form or RiskWindowCorrectForm(initial={
            "starts_at": local(window.starts_at), "ends_at": local(window.ends_at),
            "risk_level": window.risk_level, "reason": window.reason}),
        "withdraw_form": withdraw_form or RiskWindowWithdrawForm(),
    }


class RiskWindowListView(FilteredView, RoleRequiredMixin, View):
    """Risk windows (GET) and marking a new one (POST)."""

    allowed_roles = set(selectors.SUPERVISING)
    template_name = "venues/window_list.html"
    filter_form_class = RiskWindowFilterForm
    page_params = ("page",)

    def get(self, request):
        return TemplateResponse(request, self.template_name, _window_list_context(self))

    def post(self, request):
        form = RiskWindowCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                with once("risk-window", once_from(request.POST)):  # a double click marks one window
                    window = services.risk_window_create(
                        venue=data["venue_code"], starts_at=data["starts_at"], ends_at=data["ends_at"],
                        risk_level=data["risk_level"], reason=data["reason"], actor=request.user)
            except ApplicationError as exc:
                return action_refused(request, message=exc.message, back=reverse("venues:window-list"))
            else:
                messages.success(request, _("Risk window marked; the exposure job raises the popups."))
                return redirect("venues:window-detail", pk=window.pk)
        return TemplateResponse(request, self.template_name, _window_list_context(self, form), status=400)


class RiskWindowDetailView(RoleRequiredMixin, View):
    """One window with its trace; correcting (POST action=correct) and withdrawing (action=withdraw)."""

    allowed_roles = set(selectors.SUPERVISING)
    template_name = "venues/window_detail.html"

    def get(self, request, pk: int):
        window = get_object_or_404(RiskWindow.objects.select_related("venue", "created_by"), pk=pk)
        return TemplateResponse(request, self.template_name, _window_context(window))

    def post(self, request, pk: int):
        window = get_object_or_404(RiskWindow.objects.select_related("venue", "created_by"), pk=pk)
        seen = seen_from(request.POST)  # the version the page showed: a stale or repeated form does nothing
        if request.POST.get("action") == "withdraw":
            form = RiskWindowWithdrawForm(request.POST)
            act = lambda data: services.risk_window_withdraw(  # noqa: E731
                window=window, actor=request.user, reason=data["reason"], seen=seen)
            done = _("Window withdrawn; untouched popups are withdrawn.")
        else:
            form = RiskWindowCorrectForm(request.POST)
            act = lambda data: services.risk_window_correct(  # noqa: E731
                window=window, actor=request.user, seen=seen, **data)
            done = _("Window corrected; the popups it raised follow.")
        back = reverse("venues:window-detail", args=[pk])
        if not form.is_valid():
            return action_refused(request, message=_form_errors(form), back=back)
        try:
            act(form.cleaned_data)
        except ApplicationError as exc:
            # back to the window, the reason once, what was typed put back into the form
            return action_refused(request, message=exc.message, back=back)
        messages.success(request, done)
        return redirect(back)


def _form_errors(form) -> str:
    """A refused form's errors as one message (each field named), said once on the page it came from."""
    parts = []
    for name, errors in form.errors.items():
        label = form.fields[name].label if name in form.fields else None
        parts += [f"{label}: {error}" if label else str(error) for error in errors]
    return " ".join(parts)
