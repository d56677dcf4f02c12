"""Hotline console: queues, the ticket page, operator actions, phone entry, checked evidence files."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views import View

from appeals import forms, selectors, services
from appeals.clearance.selectors import appeal_task, task_hold
from appeals.evidence import private_file_response
from appeals.filters import AppealFilter
from appeals.models import Appeal
from communities.models import Community
from communities.selectors import community_find
from healthkit.concurrency import once, once_from, seen_from
from healthkit.errors import ApplicationError
from healthkit.filtering import FilteredView, single_values
from healthkit.models import PopupCase
from healthkit.permissions import STAFF_ROLES, RoleRequiredMixin, has_role
from healthkit.selectors import popup_explain
from healthkit.unsent import action_refused

QUEUE_ROLES = STAFF_ROLES
# Actions after which the ticket leaves the operator's hands: the next page is the queue they came
# from (same queue, filters, sort and page), not the ticket again.
DECISIONS = {"close", "route", "merge"}
QUEUE_PLACE_MAX = 1000


def queue_place(request) -> str | None:
    """The queue's query string a ticket was opened from (its `from` parameter; the ticket's forms
    send it back as a hidden field), re-encoded so it
    can only ever be a query string of the queue page; None when the ticket was not opened from it.
    Queue filters carry no personal data (exact ID/phone search is by POST)."""
    place = request.POST.get("from") if request.method == "POST" else request.GET.get("from")
    if place is None:
        return None
    return QueryDict(place[:QUEUE_PLACE_MAX]).urlencode()


def ticket_url(pk: int, place: str | None) -> str:
    url = reverse("appeals:ticket", args=[pk])
    return url if place is None else f"{url}?{urlencode({'from': place})}"


def queue_rows_html(rows: list[selectors.QueueRow], place: str | None = None) -> SafeString:
    """The queue table's body, escaped here: a template loop over 50 rows of nine cells cost more
    than reading them. Every value is a plain string or number from selectors.queue_rows. `place`
    (the queue's own query string) goes with each link so a decision leads back to it."""
    suffix = "" if place is None else "?" + urlencode({"from": place})
    if not rows:
        return format_html('<tr><td colspan="9" class="muted">{}</td></tr>', _("No appeals here."))
    # Not inside the f-string: xgettext cannot read a call there, so its text was never translated.
    breached_label = escape(_("SLA breached"))
    breached = f'<span class="badge red">{breached_label}</span> '
    parts = []
    for a in rows:
        priority = escape(a.priority_label)
        if a.priority == Appeal.Priority.EMERGENCY:
            priority = f'<span class="badge red">{priority}</span>'
        copies = f' <span class="badge">×{a.copies:d}</span>' if a.copies else ""
        parts.append(
            f'<tr class="p{a.priority:d}{" breached" if a.breached else ""}">'
            f'<td><a href="{escape(a.url + suffix)}">{escape(a.reference)}</a>{copies}</td><td>{priority}</td>'
            f'<td>{escape(a.status_label)}</td><td>{escape(a.category_label)}</td><td>{escape(a.person)}</td>'
            f'<td>{escape(a.community or "—")}</td><td>{escape(a.assignee or "—")}</td><td>{escape(a.filed)}</td>'
            f'<td>{breached if a.breached else ""}{escape(a.sla_due)}</td></tr>\n')
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped


class QueueView(FilteredView, RoleRequiredMixin, View):
    """Queues and filters by GET (no personal data); exact ID / phone search by POST, audited."""

    allowed_roles = QUEUE_ROLES
    template_name = "appeals/console/queue.html"
    page_size = 50
    filter_form_class = AppealFilter

    def filter_form_kwargs(self) -> dict:
        return {"queryset": self._base(), "user": self.request.user}

    def read_navigation(self, data) -> dict[str, str]:
        """The sort order and the next page's cursor come from the page's own links: one that
        cannot be read is refused, not read as the first page in the default order."""
        errors = super().read_navigation(data)
        errors.update(single_values(data, ("order", "after")))
        self.ordering = data.get("order") or "priority"
        if self.ordering not in selectors.ORDERINGS:
            errors["order"] = _("Choose one of the listed sort orders.")
        self.cursor = data.get("after") or None
        if "order" not in errors and self.cursor and not selectors.cursor_readable(self.cursor, self.ordering):
            errors["after"] = _("This link to the next page is not one this page wrote; start from the first page.")
        return errors

    def _base(self):
        # The rows are read as values() of the columns the page shows (selectors.QUEUE_ROW_VALUES).
        return selectors.appeals_visible_to(self.request.user)

    def get(self, request):
        params = request.GET.copy()
        params.setdefault("queue", "open")
        filterset, qs = self.read_filters(params)
        ordering = self.ordering
        if qs is None:
            page = selectors.SeekPage(rows=[], next_cursor=None, count=0, count_capped=False)
        else:
            page = selectors.seek_page(qs, ordering=ordering, cursor=self.cursor, size=self.page_size)
        next_params = request.GET.copy()
        if page.next_cursor:
            next_params["after"] = page.next_cursor
        return render(request, self.template_name, {
            "filter": filterset, "page": page, "rows_html": queue_rows_html(page.rows, place=request.GET.urlencode()),
            "ordering": ordering, "orderings": self._orderings(),
            "next_query": next_params.urlencode() if page.next_cursor else "",
            "search_form": forms.PersonSearchForm(), "queues": AppealFilter.QUEUES,
            "current_queue": params.get("queue"),
        })

    def post(self, request):
        form = forms.PersonSearchForm(request.POST)
        rows: list[selectors.QueueRow] = []
        if form.is_valid():
            found = selectors.appeals_for_person(user=request.user, context="appeals:queue-search",
                                                 **form.cleaned_data)
            rows = selectors.queue_rows(Appeal.objects.filter(pk__in=[a.pk for a in found])
                                        .order_by("-created_at", "-id").values(*selectors.QUEUE_ROW_VALUES))
        filterset = AppealFilter({"queue": "open"}, queryset=self._base(), user=request.user)
        return render(request, self.template_name, {
            "filter": filterset, "search_form": form, "search_rows": rows, "rows_html": queue_rows_html(rows),
            "searched": form.is_valid(),
            "queues": AppealFilter.QUEUES, "orderings": self._orderings(), "ordering": "priority",
        })

    @staticmethod
    def _orderings():
        return [("priority", _("Priority, then oldest")), ("sla", _("SLA due first")),
                ("oldest", _("Oldest first")), ("newest", _("Newest first"))]


class PhoneEntryView(RoleRequiredMixin, View):
    """An appeal taken on the 12345 line, entered by the operator (call logged)."""

    allowed_roles = set(selectors.HANDLER_ROLES)
    template_name = "appeals/console/phone_entry.html"

    def get(self, request):
        return render(request, self.template_name, {"form": forms.PhoneEntryForm()})

    def post(self, request):
        form = forms.PhoneEntryForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            matches = community_find(data["address"], limit=1) if data["address"] else []
            try:
                # One appeal and one call per form, however often "create" is pressed.
                with once("phone-entry", once_from(request.POST)):
                    appeal, folded = services.appeal_file_by_phone(
                        actor=request.user, name=data["name"], id_number=data["id_number"], phone=data["phone"],
                        category=data["category"], popup_type_claimed=data["popup_type_claimed"],
                        community=matches[0].community if matches else None, address_text=data["address"],
                        description=data["description"], call_outcome=data["call_outcome"],
                        call_note=data["call_note"], currently_outside_city=data["currently_outside_city"],
                        outside_since=data["outside_since"], wishes_to_return=data["wishes_to_return"],
                        identity_acknowledged=data["identity_acknowledged"])
            except services.IdentityCheckNeeded as exc:
                form.add_error("identity_acknowledged", exc.message)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                if folded:
                    messages.info(request, _("The caller already had an open appeal; the call was added to it."))
                else:
                    messages.success(request, _("Appeal %(ref)s created.") % {"ref": appeal.reference})
                return redirect("appeals:ticket", pk=appeal.pk)
        return render(request, self.template_name, {"form": form}, status=400)


class TicketView(RoleRequiredMixin, View):
    allowed_roles = QUEUE_ROLES
    template_name = "appeals/console/ticket.html"

    def _context(self, appeal, **extra):
        user = self.request.user
        popups = [(popup, popup_explain(popup)) for popup in selectors.appeal_popups(appeal)]
        can_handle = has_role(user, selectors.HANDLER_ROLES)
        linkable = []
        if can_handle and appeal.is_open:
            # An operator can link an unlinked (or wrongly linked) ticket to one of the open popups.
            candidates = [popup for popup, _lines in popups if popup.is_open and popup.pk != appeal.popup_id]
            held = selectors.popup_open_appeals(candidates, exclude=appeal)
            linkable = [(popup, held.get(popup.pk)) for popup in candidates]
        place = queue_place(self.request)
        task = appeal_task(appeal)
        context = {
            "place_input": "" if place is None else format_html('<input type="hidden" name="from" value="{}">', place),
            "queue_url": reverse("appeals:queue") + (f"?{place}" if place else ""),
            "appeal": appeal, "popups": popups, "events": selectors.appeal_history(appeal),
            "contacts": appeal.contacts.select_related("operator").order_by("at", "id"),
            "can_see_evidence": selectors.can_see_evidence(user, appeal),
            "evidence": selectors.appeal_evidence(appeal) if selectors.can_see_evidence(user, appeal) else [],
            "evidence_count": selectors.appeal_evidence(appeal).count(),
            "can_handle": can_handle and appeal.is_open,
            "can_reveal": selectors.can_reveal_resident(user, appeal),
            "suggestions": selectors.community_suggestions(appeal) if can_handle else [],
            "merged": appeal.merged.all(), "linkable_popups": linkable,
            # The community's task, as its worker sees it (state, on hold, where it is).
            "clearance_task": task, "clearance_hold": task_hold(task) if task is not None else None,
            "forms": {
                "assign": forms.AssignForm(), "priority": forms.PriorityForm(initial={"priority": appeal.priority}),
                "merge": forms.MergeForm(), "request": forms.RequestEvidenceForm(), "route": forms.RouteForm(),
                "close": forms.CloseForm(), "contact": forms.ContactForm(), "reveal": forms.RevealForm(),
                "confirm_filer": forms.ConfirmFilerForm(),
            },
        }
        context.update(extra)
        return context

    def get(self, request, pk):
        appeal = selectors.appeal_access(user=request.user, pk=pk, where="console")
        return render(request, self.template_name, self._context(appeal))

    def post(self, request, pk):
        """Reveal: the clear details are rendered once in this response, never stored or redirected."""
        appeal = selectors.appeal_access(user=request.user, pk=pk, where="console:reveal")
        form = forms.RevealForm(request.POST)
        back = ticket_url(appeal.pk, queue_place(request))
        if not form.is_valid():
            return action_refused(request, message=_("Please say why you need the full details."), back=back)
        try:
            revealed = services.appeal_reveal(appeal=appeal, actor=request.user, reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            return action_refused(request, message=exc.message, back=back)
        response = render(request, self.template_name, self._context(appeal, revealed=revealed))
        response["Cache-Control"] = "no-store"
        return response


class TicketActionView(RoleRequiredMixin, View):
    """One POST endpoint per action; each calls one service, which writes the history event."""

    allowed_roles = set(selectors.HANDLER_ROLES)
    seen: str | None = None

    def post(self, request, pk, action):
        # The version of the appeal the ticket page showed: a stale or repeated form does nothing.
        self.seen = seen_from(request.POST)
        appeal = selectors.appeal_access(user=request.user, pk=pk, where=f"console:{action[:40]}")
        handler = getattr(self, f"do_{action.replace('-', '_')}", None)
        if handler is None:
            raise Http404
        try:
            message = handler(request, appeal)
        except ApplicationError as exc:
            return self._refused(request, appeal, action, exc)
        if message:
            messages.success(request, message)
        place = queue_place(request)
        if action in DECISIONS and place is not None:
            return redirect(reverse("appeals:queue") + (f"?{place}" if place else ""))
        return redirect(ticket_url(appeal.pk, place))

    def _refused(self, request, appeal, action: str, exc: ApplicationError):
        """Back to the ticket (the queue place kept), the reason said once, what was typed put
        back into the form (healthkit.unsent.action_refused); a reload sends nothing again."""
        return action_refused(request, message=exc.message, back=ticket_url(appeal.pk, queue_place(request)))

    def _form(self, cls, request):
        form = cls(request.POST)
        if not form.is_valid():
            errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
            raise ApplicationError(errors or _("Please check the form."))
        return form.cleaned_data

    def do_assign_me(self, request, appeal):
        services.appeal_assign(appeal=appeal, assignee=request.user, actor=request.user, seen=self.seen)
        return _("The appeal is yours.")

    def do_assign(self, request, appeal):
        data = self._form(forms.AssignForm, request)
        services.appeal_assign(appeal=appeal, assignee=data["assignee"], actor=request.user, seen=self.seen)
        return _("Assigned to %(user)s.") % {"user": data["assignee"].get_username()}

    def do_priority(self, request, appeal):
        data = self._form(forms.PriorityForm, request)
        services.appeal_set_priority(appeal=appeal, priority=data["priority"], actor=request.user,
                                      reason=data["reason"], seen=self.seen)
        return _("Priority changed.")

    def do_merge(self, request, appeal):
        data = self._form(forms.MergeForm, request)
        into = Appeal.objects.filter(reference=data["into_reference"].strip().upper()).first()
        if into is None:
            raise ApplicationError(_("No appeal has that reference."))
        services.appeal_merge(duplicate=appeal, into=into, actor=request.user, seen=self.seen)
        return _("Merged into %(ref)s.") % {"ref": into.reference}

    def do_link_popup(self, request, appeal):
        data = self._form(forms.LinkPopupForm, request)
        popup = PopupCase.objects.filter(pk=data["popup"], resident_id=appeal.resident_id).first()
        if popup is None:
            raise ApplicationError(_("That popup is not one of this resident's open popups."))
        services.appeal_link_popup(appeal=appeal, popup=popup, actor=request.user, seen=self.seen)
        return _("Linked to popup %(type)s.") % {"type": popup.get_popup_type_display()}

    def do_request_evidence(self, request, appeal):
        data = self._form(forms.RequestEvidenceForm, request)
        services.appeal_request_evidence(appeal=appeal, actor=request.user, message=data["message"], seen=self.seen)
        return _("The resident has been sent an SMS with a link to add evidence.")

    def do_route(self, request, appeal):
        data = self._form(forms.RouteForm, request)
        community = None
        if data.get("community_code"):
            community = Community.objects.filter(code=data["community_code"].strip()).first()
        elif data.get("community"):
            community = Community.objects.filter(pk=data["community"]).first()
        if community is None:
            raise ApplicationError(_("Choose a community to send the appeal to."))
        services.appeal_route(appeal=appeal, community=community, actor=request.user, reason=data["reason"],
                              seen=self.seen)
        return _("Sent to %(community)s.") % {"community": community}

    def do_confirm_filer(self, request, appeal):
        data = self._form(forms.ConfirmFilerForm, request)
        services.appeal_confirm_filer(appeal=appeal, actor=request.user, reason=data["reason"], seen=self.seen)
        return _("The filer is confirmed.")

    def do_close(self, request, appeal):
        data = self._form(forms.CloseForm, request)
        services.appeal_close(appeal=appeal, actor=request.user, reason=data["reason"], outcome=data["outcome"],
                              seen=self.seen)
        return _("Appeal closed.")

    def do_contact(self, request, appeal):
        data = self._form(forms.ContactForm, request)
        services.appeal_contact_log(appeal=appeal, actor=request.user, direction=data["direction"],
                                    outcome=data["outcome"], note=data["note"], seen=self.seen)
        return _("Call logged.")


class _EvidenceFileBase(View):
    """Checked file serving: anonymous never (login), everyone else only as can_see_evidence says."""

    field = "file"

    def get(self, request, pk):
        if not request.user.is_authenticated:
            raise PermissionDenied
        evidence = selectors.evidence_access(user=request.user, pk=pk, where=self.field, head=request.method == "HEAD")
        stored = getattr(evidence, self.field)
        content_type = evidence.content_type if self.field == "file" else "image/jpeg"
        return private_file_response(
            stored, content_type=content_type,
            filename=f'evidence-{evidence.pk}.{stored.name.rsplit(".", 1)[-1]}')


class EvidenceFileView(_EvidenceFileBase):
    field = "file"


class EvidenceThumbView(_EvidenceFileBase):
    field = "thumbnail"
