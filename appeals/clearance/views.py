"""Views of community clearance: the resident's one-time link page and the community worker
console. Views are thin: forms validate, services act, selectors scope."""


from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from appeals import ratelimit
from appeals.clearance import forms, selectors, services
from appeals.clearance.models import ClearanceLink, ClearanceTask
from appeals.ratelimit import client_ip
from communities import pii
from communities.models import PersonalDataAccess
from communities.selectors import (
    communities_visible_to,
    resident_by_id_number,
    residents_visible_to,
)
from communities.services import access_log
from healthkit import clock
from healthkit.concurrency import once, once_from, seen_from
from healthkit.errors import ApplicationError
from healthkit.filtering import FilteredView
from healthkit.middleware import retry_after
from healthkit.models import PopupCase
from healthkit.permissions import RoleRequiredMixin
from healthkit.selectors import popup_explain
from healthkit.spreadsheet import ChoiceLabels, csv_stream_response, csv_writer
from healthkit.unsent import action_refused

WORKER_ROLES = set(selectors.WORKER_ROLES)


# --- the resident's link ---------------------------------------------------------------------


@method_decorator([never_cache, csrf_protect], name="dispatch")
class ResidentLinkView(View):
    """GET shows the form for a valid link; POST submits it and spends the link. Any link that
    cannot be used gets the same kind of page: what happened and what to do, and no data."""

    template_name = "clearance/link_form.html"

    def dispatch(self, request, *args, **kwargs):
        if wait := _over_limit("ip:" + client_ip(request), settings.CLEARANCE_LINK_RATE_LIMIT):
            response = render(request, "clearance/link_refused.html", {"reason": "busy", "site": _official_site()},
                              status=429)
            return _private(retry_after(response, wait))
        return super().dispatch(request, *args, **kwargs)

    def _refused(self, request, reason: str):
        # 410 for a link that existed and is spent; 404 for anything else (tampered, unknown).
        status = 410 if reason in ("expired", "used", "replaced", "closed") else 404
        response = render(request, "clearance/link_refused.html", {"reason": reason, "site": _official_site()},
                          status=status)
        return _private(response)

    def _make_form(self, link: ClearanceLink, data=None):
        if link.purpose == ClearanceLink.Purpose.COMMITMENT:
            return forms.CommitmentForm(data)
        task = link.task
        born = task.resident.birth_date() if data is not None else None
        return forms.ConfirmationForm(data, commitment=task.commitment_required and task.commitment_signed_at is None,
                                      born=born)

    def _render(self, request, link: ClearanceLink, form, status: int = 200):
        task = link.task
        response = render(request, self.template_name, {
            "form": form, "link": link, "community": task.community, "question": selectors.task_open_question(task),
            "letter": services.commitment_letter_text(), "site": _official_site(),
            "expires_at": link.expires_at,
        }, status=status)
        return _private(response)

    def get(self, request, token: str):
        status = selectors.link_status(token)
        if not status.ok:
            return self._refused(request, status.reason)
        return self._render(request, status.link, self._make_form(status.link))

    def post(self, request, token: str):
        status = selectors.link_status(token)
        if not status.ok:
            return self._refused(request, status.reason)
        form = self._make_form(status.link, request.POST)
        if not form.is_valid():
            return self._render(request, status.link, form, status=400)
        try:
            if isinstance(form, forms.CommitmentForm):
                services.clearance_confirm_submit(token=token, confirmation={},
                                                  signature=form.cleaned_data["signature"])
            else:
                services.clearance_confirm_submit(token=token, confirmation=form.confirmation(),
                                                  contact_phone=form.cleaned_data["contact_phone"],
                                                  signature=form.cleaned_data.get("signature", ""))
        except services.LinkRefused as exc:
            return self._refused(request, exc.extra.get("reason", "invalid"))
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            return self._render(request, status.link, form, status=400)
        response = render(request, "clearance/link_done.html", {"site": _official_site()})
        return _private(response)


def _over_limit(subject: str, rule: str) -> int:
    """Fixed-window count per subject (a keyed hash in the cache, never the address or user):
    over the limit, the window's length in seconds (the longest wait, for Retry-After); else 0."""
    count, seconds = (int(x) for x in rule.split("/"))
    over = ratelimit.window_count("clearance:rl:" + pii.keyed_hash("rl:" + subject)[:32], seconds) > count
    return max(seconds, 1) if over else 0


def _private(response):
    # The token is in the URL: never leak it to another site through Referer, keep it out of
    # search engines. ("no-referrer" would make browsers send "Origin: null" and fail CSRF.)
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _official_site() -> str:
    return settings.OFFICIAL_SITE_URL


# --- the community worker console -------------------------------------------------------------


class WorkerMixin(RoleRequiredMixin):
    allowed_roles = WORKER_ROLES


class _WorklistFiltered(FilteredView, WorkerMixin):
    filter_form_class = forms.WorklistFilterForm

    def filter_form_kwargs(self) -> dict:
        return {"communities": communities_visible_to(self.request.user)[:200]}


def _worklist(user, filters: selectors.WorklistFilters | None):
    """The tasks for these filters; none for filters that could not be read (never every task)."""
    return selectors.worklist(user=user, filters=filters) if filters is not None else ClearanceTask.objects.none()


class WorklistView(_WorklistFiltered, View):
    page_params = ("page",)

    def get(self, request):
        form, filters = self.read_filters()
        tasks = _worklist(request.user, filters)
        page = Paginator(tasks, 50).get_page(self.page_number())
        query = request.GET.copy()
        query.pop("page", None)
        return render(request, "clearance/worklist.html", {
            "form": form, "page": page, "counts": selectors.state_counts(user=request.user),
            "states": ClearanceTask.State, "now": clock.now(), "query": query.urlencode(),
        })


class WorklistCsvView(_WorklistFiltered, View):
    """The worklist as CSV: the user's own communities only, personal data masked, logged."""

    def get(self, request):
        form, filters = self.read_filters()
        if filters is None:  # nothing exported, nothing logged: the form to correct
            return self.refused_export(form, reverse("clearance:worklist"))
        tasks = _worklist(request.user, filters)
        access_log(actor=request.user, resident=None, action=PersonalDataAccess.Action.EXPORT,
                   context="clearance:worklist.csv", reason=request.GET.urlencode()[:200])
        writer = csv_writer()
        label = ChoiceLabels(ClearanceTask)

        def rows():
            yield "\ufeff"
            yield writer.writerow([_("Reference"), _("Community"), _("Resident"), _("Phone"), _("Origin"),
                                   _("State"), _("Priority"), _("Popup type"), _("Appeal"), _("SLA due"),
                                   _("Escalated"), _("Opened")])
            for t in tasks.iterator(chunk_size=2000):
                phone = t.contact_phone_masked or (t.appeal.contact_phone_masked if t.appeal_id else "")
                yield writer.writerow([
                    t.reference, t.community.name, t.resident.masked, phone, label(t, "origin"),
                    label(t, "state"), label(t, "priority"), t.popup.popup_type if t.popup_id else "",
                    t.appeal.reference if t.appeal_id else "",
                    timezone.localtime(t.sla_due_at).strftime("%Y-%m-%d %H:%M") if t.sla_due_at else "",
                    timezone.localtime(t.escalated_at).strftime("%Y-%m-%d %H:%M") if t.escalated_at else "",
                    timezone.localtime(t.created_at).strftime("%Y-%m-%d %H:%M"),
                ])

        return csv_stream_response(rows(), filename="clearance-worklist.csv")


class TaskDetailView(WorkerMixin, View):
    def get(self, request, pk: int, revealed=None, status: int = 200, bound: dict | None = None):
        """The task page. `bound`: a refused action's form as the worker filled it in, shown in
        place of the empty one (or, when the task no longer offers it, as text to copy)."""
        task = selectors.task_access(user=request.user, task_id=pk, where="console")
        page_forms = {
            "accept": forms.AcceptForm(), "reject": forms.RejectForm(), "info": forms.InfoForm(),
            "investigate": forms.InvestigateForm(), "call": forms.CallForm(), "reveal": forms.RevealForm(),
        }
        unsent = None
        for key, form in (bound or {}).items():
            page_forms[key] = form
            unsent = form if not task.is_open and key != "reveal" else None  # reveal is offered on any task
        popups = selectors.task_popups(task)
        decision_popup = selectors.task_decision_popup(task) if task.is_open else None
        history = list(selectors.task_history(task))  # read once: calls, letter and reason come from it
        return render(request, "clearance/task_detail.html", {
            "task": task,
            "popups": [{"case": p, "why": popup_explain(p)} for p in popups],
            "evidence": selectors.task_evidence(task),
            "calls": selectors.task_calls(task, history=history),
            "history": history,
            "links": task.links.order_by("-created_at"),
            "sms_messages": selectors.task_messages(task),
            "commitment": selectors.task_commitment(task, history=history),
            "community_reason": selectors.task_community_reason(task, history=history),
            "hold": selectors.task_hold(task),
            "measures": selectors.task_measures(task),
            "revealed": revealed,
            "forms": page_forms,
            "unsent": unsent,
            # Once measures have started, the outcome is recorded: no second investigation.
            "can_investigate": task.is_awaiting and decision_popup is not None and decision_popup.popup_type == 3,
            # The popup the decision is about, when the appeal's claim supplies it (linked on decision).
            "claimed_popup": decision_popup if decision_popup is not None and not task.popup_id else None,
            "decision_popup": decision_popup,
            # Where the service would refuse "accept", the page says why instead of offering it.
            "accept_refusal": selectors.task_accept_refusal(task=task, popup=decision_popup) if task.is_open else "",
            "means": dict(forms.ConfirmationForm.MEANS), "symptoms": dict(forms.ConfirmationForm.SYMPTOMS),
            "now": clock.now(),
        }, status=status)


class TaskActionView(WorkerMixin, View):
    """POST one decision on a task; every decision records actor and reason (services do)."""

    # (form, service call, confirmation message — lazy: translated per request, not at import)
    ACTIONS = {
        "accept": (forms.AcceptForm, lambda t, u, d, s: services.clearance_accept(
            task=t, actor=u, reason=d["reason"], seen=s),
            gettext_lazy("Accepted; the popup is lifted and the resident is told.")),
        "reject": (forms.RejectForm, lambda t, u, d, s: services.clearance_reject(
            task=t, actor=u, reason=d["reason"], next_step=d["next_step"], seen=s),
            gettext_lazy("Rejected; the resident is told the next step.")),
        "info": (forms.InfoForm, lambda t, u, d, s: services.clearance_request_info(
            task=t, actor=u, question=d["question"], seen=s),
            gettext_lazy("The resident has been sent your question and a new link.")),
        "investigate": (forms.InvestigateForm, lambda t, u, d, s: services.clearance_investigate(
            task=t, actor=u, outcome=d["outcome"], reason=d["reason"], confirm_high_risk=d["confirm_high_risk"],
            seen=s),
            gettext_lazy("Investigation recorded; its measures have started.")),
        "call": (forms.CallForm, lambda t, u, d, s: services.clearance_call_log(
            task=t, actor=u, direction=d["direction"], outcome=d["outcome"], note=d["note"], seen=s),
            gettext_lazy("Call logged.")),
    }

    def get(self, request, pk: int, action: str):
        return HttpResponseNotAllowed(["POST"])

    def post(self, request, pk: int, action: str):
        task = selectors.task_access(user=request.user, task_id=pk, where=f"console:{action[:40]}")
        if action == "reveal":
            form = forms.RevealForm(request.POST)
            if wait := _over_limit(f"user:{request.user.pk}", settings.CLEARANCE_LOOKUP_RATE_LIMIT):
                form.is_valid()
                return retry_after(self._refused(request, task, action, form, _(
                    "Too many look-ups; please wait a while before the next one."), status=429), wait)
            if not form.is_valid():
                return _task_refused(request, task, _("Please say why you need the full details."))
            revealed = services.clearance_reveal(task=task, actor=request.user, reason=form.cleaned_data["reason"])
            return TaskDetailView().get(request, pk=task.pk, revealed=revealed)
        if action == "resend":
            try:
                services.clearance_link_resend(task=task, actor=request.user, seen=seen_from(request.POST))
            except ApplicationError as exc:
                return _task_refused(request, task, exc.message)
            messages.success(request, _("A new link has been sent; the earlier one no longer works."))
            return redirect("clearance:task", pk=task.pk)
        if action not in self.ACTIONS:
            raise PermissionDenied
        form_class, act, done = self.ACTIONS[action]
        form = form_class(request.POST)
        if not form.is_valid():
            errors = form.errors.get("confirm_high_risk")
            return _task_refused(request, task, errors[0] if errors else _("Please fill in every field of the form."))
        try:
            # The version of the task the page showed: a stale or repeated form does nothing.
            result = act(task, request.user, form.cleaned_data, seen_from(request.POST))
        except ApplicationError as exc:
            return _task_refused(request, task, exc.message)
        else:
            if isinstance(result, ClearanceTask) and result.state == ClearanceTask.State.ACCEPTED:
                done = _("Accepted; there was no popup on record to lift. The resident is told so, and to call "
                         "12345 if a popup still shows.")
            messages.success(request, done)
        return redirect("clearance:task", pk=task.pk)


    @staticmethod
    def _refused(request, task: ClearanceTask, action: str, form, message: str, status: int = 400):
        """The task page as it is now with the refused form as the worker filled it in and why:
        the look-up limit's 429, which must say when to try again (Retry-After)."""
        messages.error(request, message)
        return TaskDetailView().get(request, pk=task.pk, status=status, bound={action: form})


def _task_refused(request, task: ClearanceTask, message: str):
    """Back to the task page, the reason said once, what was typed put back into the form
    (healthkit.unsent.action_refused); a reload sends nothing again."""
    return action_refused(request, message=message, back=reverse("clearance:task", args=[task.pk]))


class CheckpointView(WorkerMixin, View):
    """The self-drive route: pre-approve a resident calling from a checkpoint."""

    def _communities(self, request):
        return communities_visible_to(request.user).order_by("code")[:200]

    def get(self, request):
        return render(request, "clearance/checkpoint.html",
                      {"form": forms.CheckpointForm(communities=self._communities(request))})

    def post(self, request):
        form = forms.CheckpointForm(request.POST, communities=self._communities(request))
        # Look-ups of a person by ID number are rate-limited per staff user (and audited below).
        if wait := _over_limit(f"user:{request.user.pk}", settings.CLEARANCE_LOOKUP_RATE_LIMIT):
            form.add_error(None, _("Too many look-ups; please wait a while before the next one."))
            return retry_after(render(request, "clearance/checkpoint.html", {"form": form}, status=429), wait)
        if form.is_valid():
            d = form.cleaned_data
            community = communities_visible_to(request.user).filter(pk=d["community"]).first()
            resident = resident_by_id_number(d["id_number"])
            # Audited look-up; a resident outside the user's communities is "not found" (no hint).
            if resident is not None and not residents_visible_to(request.user).filter(pk=resident.pk).exists():
                resident = None
            access_log(actor=request.user, resident=resident, action=PersonalDataAccess.Action.LOOKUP,
                       context="clearance:checkpoint", reason=d["reason"][:200])
            if community is None or resident is None:
                form.add_error("id_number", _("No resident with this ID number is registered in your communities."))
            else:
                # The popup the checkpoint stopped them for: type 3 first, else type 1.
                popup = (PopupCase.objects.filter(resident=resident, state__in=PopupCase.OPEN_STATES,
                                                  popup_type__in=[3, 1])
                         .order_by("-popup_type", "-raised_at").first())
                try:
                    with once("checkpoint", once_from(request.POST)):  # a double click: one task, one SMS
                        task = services.clearance_checkpoint_preapprove(
                            actor=request.user, resident=resident, community=community, popup=popup,
                            measure=d["measure"], reason=d["reason"])
                except ApplicationError as exc:
                    form.add_error(None, exc.message)
                else:
                    messages.success(request, _("Pre-approved; the resident is texted the commitment letter."))
                    return redirect("clearance:task", pk=task.pk)
        return render(request, "clearance/checkpoint.html", {"form": form}, status=400)

