"""Resident pages: file an appeal step by step, follow it, answer an evidence request.

No account: the resident proves the phone with a one-time SMS code. The form's progress sits in
the session (personal data encrypted); nothing personal ever goes into a URL. Rate limits answer
with a polite message and keep what the resident already sent.
"""

import datetime as dt
import secrets

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from appeals import forms, progress, ratelimit, selectors, services
from appeals.clearance.selectors import clearance_progress_for_appeal
from appeals.evidence import private_file_response
from appeals.models import Appeal, AppealEvent, AppealEvidence
from communities import pii
from communities.models import Community, Resident
from communities.selectors import community_find
from healthkit import inputs
from healthkit.concurrency import once
from healthkit.errors import ApplicationError
from healthkit.middleware import retry_after
from healthkit.models import PopupCase
from healthkit.selectors import popup_explain
from healthkit.unsent import unsent_keep

SESSION_KEY = "appeal_draft"
CHALLENGE_KEY = "appeal_challenge"
DONE_KEY = "appeal_done"


class StartView(TemplateView):
    template_name = "appeals/public/start.html"


class IdentifyView(View):
    template_name = "appeals/public/identify.html"

    def get(self, request):
        return render(request, self.template_name, {"form": forms.IdentifyForm(), "step": 1})

    def post(self, request):
        form = forms.IdentifyForm(request.POST)
        if form.is_valid():
            try:
                challenge = services.identity_code_send(
                    name=form.cleaned_data["name"], id_number=form.cleaned_data["id_number"],
                    phone=form.cleaned_data["phone"], ip=ratelimit.client_ip(request))
            except ratelimit.RateLimited as exc:
                form.add_error(None, exc.message)
                return retry_after(render(request, self.template_name, {"form": form, "step": 1}, status=429),
                                   exc.retry_after)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                request.session[CHALLENGE_KEY] = {"token": challenge.token, "phone": challenge.phone_masked}
                return redirect("appeals:file-verify")
        return render(request, self.template_name, {"form": form, "step": 1}, status=400 if form.errors else 200)


class VerifyView(View):
    template_name = "appeals/public/verify.html"

    def _challenge(self, request):
        return request.session.get(CHALLENGE_KEY)

    def get(self, request):
        challenge = self._challenge(request)
        if not challenge:
            return redirect("appeals:file-identify")
        return render(request, self.template_name, {"form": forms.CodeForm(), "phone": challenge["phone"], "step": 1})

    def post(self, request):
        challenge = self._challenge(request)
        if not challenge:
            return redirect("appeals:file-identify")
        if request.POST.get("action") == "resend":
            try:
                fresh = services.identity_code_resend(token=challenge["token"], ip=ratelimit.client_ip(request))
            except ApplicationError as exc:
                messages.error(request, exc.message)
                return redirect("appeals:file-identify" if not isinstance(exc, ratelimit.RateLimited) else "appeals:file-verify")
            request.session[CHALLENGE_KEY] = {"token": fresh.token, "phone": fresh.phone_masked}
            messages.info(request, _("A new code is on its way."))
            return redirect("appeals:file-verify")
        form = forms.CodeForm(request.POST)
        if form.is_valid():
            try:
                identity = services.identity_code_verify(token=challenge["token"], code=form.cleaned_data["code"])
            except ApplicationError as exc:
                form.add_error("code", exc.message)
            else:
                request.session.cycle_key()  # a proven identity gets a fresh session id
                request.session.pop(CHALLENGE_KEY, None)
                request.session[SESSION_KEY] = {
                    "resident_id": identity.resident_id, "phone": identity.phone_encrypted,
                    "confirmed": identity.confirmed, "name": identity.name_encrypted, "id": identity.id_encrypted,
                    "draft_key": secrets.token_hex(16),
                }
                return redirect("appeals:file-popup")
        return render(request, self.template_name, {"form": form, "phone": challenge["phone"], "step": 1}, status=400)


class DraftMixin:
    """Steps after the code: need a verified draft in the session, else back to the start."""

    def dispatch(self, request, *args, **kwargs):
        self.draft = request.session.get(SESSION_KEY)
        if not self.draft or not self.draft.get("id"):
            request.session.pop(SESSION_KEY, None)
            if request.session.get(DONE_KEY) and CHALLENGE_KEY not in request.session:
                # Back to a step (or "submit" again) after the appeal was filed: show its reference,
                # not "confirm your phone" or "session expired", which read as if it were lost.
                return redirect("appeals:file-done")
            if request.method == "POST":  # a step's form sent after the session ended: say so, not "start"
                unsent_keep(request, back=request.path)  # what was typed comes back at this step
                messages.warning(request, _("Your session has expired. Please start again."))
            else:
                messages.info(request, _("Please confirm your phone number first."))
            return redirect("appeals:file-identify")
        # The registry's record for the ID number typed, or None; only a confirmed filer sees it.
        self.resident = Resident.objects.select_related("community").filter(pk=self.draft.get("resident_id") or 0).first()
        return super().dispatch(request, *args, **kwargs)

    @property
    def phone_on_record(self) -> bool:
        """Only a confirmed filer (name as registered, phone already on the resident's record) may see
        the record (popups, community)."""
        return bool(self.draft.get("confirmed")) and self.resident is not None

    def identity(self) -> services.FilerIdentity:
        """The filer's identity checked again now (the registry may have changed since step 1)."""
        return services.filer_identity(name=pii.decrypt(self.draft["name"]), id_number=pii.decrypt(self.draft["id"]),
                                       phone=pii.decrypt(self.draft["phone"]))

    def save_draft(self, **values):
        self.draft.update(values)
        self.request.session[SESSION_KEY] = self.draft
        self.request.session.modified = True


class PopupStepView(DraftMixin, View):
    template_name = "appeals/public/popup.html"

    def _form(self, data=None):
        # A phone that is not on record sees no popup at all (whether the person has popups, or a
        # record, stays unsaid): the filer names the popup number they see instead.
        popups = selectors.resident_open_popups(self.resident) if self.phone_on_record else []
        initial = {k: self.draft.get(k) for k in ("category", "popup_type_claimed", "currently_outside_city", "wishes_to_return")}
        initial["popup"] = str(self.draft["popup_id"]) if self.draft.get("popup_id") else self.draft.get("popup_choice")
        if not popups:
            initial["popup"] = forms.UNLISTED
        born = pii.birth_date(pii.decrypt(self.draft["id"])) if self.draft.get("id") else None
        return forms.PopupCategoryForm(data, popups=popups, initial=initial, born=born), popups

    def _context(self, form, popups):
        return {"form": form, "popups": popups, "phone_on_record": self.phone_on_record, "step": 2}

    def get(self, request):
        form, popups = self._form()
        return render(request, self.template_name, self._context(form, popups))

    def post(self, request):
        form, popups = self._form(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            popup_id = None if data["popup"] == forms.UNLISTED else int(data["popup"])
            self.save_draft(
                popup_id=popup_id, popup_choice=data["popup"], popup_type_claimed=data["popup_type_claimed"],
                category=data["category"], currently_outside_city=data["currently_outside_city"],
                outside_since=data["outside_since"].isoformat() if data["outside_since"] else None,
                wishes_to_return=data["wishes_to_return"],
            )
            return redirect("appeals:file-community")
        return render(request, self.template_name, self._context(form, popups), status=400)


class CommunityStepView(DraftMixin, View):
    """Find the community (社区) from an address or compound; the resident confirms it."""

    template_name = "appeals/public/community.html"

    def get(self, request):
        form = forms.CommunitySearchForm(initial={"address": self.draft.get("address_text", "")})
        return render(request, self.template_name, self._context(form, []))

    def _context(self, form, matches):
        chosen = Community.objects.select_related("street__district").filter(pk=self.draft.get("community_id")).first()
        registered = self.resident.community if self.phone_on_record else None
        return {"form": form, "matches": matches, "chosen": chosen, "registered": registered, "step": 3}

    def post(self, request):
        action = request.POST.get("action")
        if action == "confirm":
            community = Community.objects.filter(pk=inputs.key(request.POST.get("community"))).first()
            if community is None:
                messages.error(request, _("Please choose your community from the list."))
                return redirect("appeals:file-community")
            self.save_draft(community_id=community.pk)
            return redirect("appeals:file-details")
        if action == "skip":
            self.save_draft(community_id=None)
            return redirect("appeals:file-details")
        form = forms.CommunitySearchForm(request.POST)
        matches = []
        if form.is_valid():
            self.save_draft(address_text=form.cleaned_data["address"])
            matches = community_find(form.cleaned_data["address"])
            if not matches:
                form.add_error("address", _("We could not find a community for this address. Try the compound "
                                            "name, or the street and district."))
        return render(request, self.template_name, self._context(form, matches))


class DetailsStepView(DraftMixin, View):
    template_name = "appeals/public/details.html"

    def _drafts(self):
        return AppealEvidence.objects.filter(appeal__isnull=True, draft_key=self.draft["draft_key"]).order_by("id")

    def _render(self, form, errors=(), status=200):
        return render(self.request, self.template_name, {
            "form": form, "drafts": self._drafts(), "upload_errors": errors, "step": 4,
            "max_files": settings.APPEALS_EVIDENCE_MAX_FILES}, status=status)

    def get(self, request):
        return self._render(forms.DetailsForm(initial={"description": self.draft.get("description", "")}))

    def post(self, request):
        form = forms.DetailsForm(request.POST)
        if form.is_valid():
            self.save_draft(description=form.cleaned_data["description"])
        action = request.POST.get("action", "continue")
        if request.POST.get("remove"):
            evidence = self._drafts().filter(pk=inputs.key(request.POST.get("remove"))).first()
            if evidence is not None:
                services.evidence_discard(evidence=evidence)
            return redirect("appeals:file-details")
        errors = self._store_uploads(request)
        if errors or action == "upload":
            return self._render(form, errors, status=400 if errors else 200)
        if not form.is_valid():
            return self._render(form, status=400)
        return redirect("appeals:file-check")

    def _store_uploads(self, request) -> list[str]:
        uploads = request.FILES.getlist("files")
        try:
            services.evidence_room_check(count=len(uploads), draft_key=self.draft["draft_key"])
        except ApplicationError as exc:
            return [exc.message]
        errors = []
        for index, upload in enumerate(uploads, start=1):
            try:
                ratelimit.hit("upload_ip", ratelimit.client_ip(request))
                services.evidence_store(upload=upload, draft_key=self.draft["draft_key"])
            except ApplicationError as exc:
                # The resident's file name may hold personal data: refer to the file by position.
                errors.append(_("Picture %(n)d: %(message)s") % {"n": index, "message": exc.message})
        return errors


class DraftThumbView(DraftMixin, View):
    """The resident's own draft picture (thumbnail), for this session's form only."""

    def get(self, request, pk):
        evidence = AppealEvidence.objects.filter(pk=pk, appeal__isnull=True, draft_key=self.draft["draft_key"]).first()
        if evidence is None:
            raise PermissionDenied
        return private_file_response(evidence.thumbnail, content_type="image/jpeg", filename=f"draft-{evidence.pk}.jpg")


class CheckView(DraftMixin, View):
    template_name = "appeals/public/check.html"

    def _popup(self) -> PopupCase | None:
        if not self.phone_on_record:
            return None
        return PopupCase.objects.filter(pk=self.draft.get("popup_id") or 0, resident=self.resident).first()

    def _person(self) -> str:
        """Surname and ID ends as the filer typed them (never the registry's)."""
        number = pii.decrypt(self.draft["id"])
        return pii.masked_person(pii.decrypt(self.draft["name"]), pii.mask_id(number))

    def _context(self):
        draft = self.draft
        popup = self._popup()
        return {
            "person": self._person(), "popup": popup, "draft": draft,
            "category": Appeal.Category(draft["category"]).label if draft.get("category") else "",
            "community": Community.objects.select_related("street__district").filter(pk=draft.get("community_id") or 0).first(),
            "drafts": AppealEvidence.objects.filter(appeal__isnull=True, draft_key=draft["draft_key"]).order_by("id"),
            "phone_masked": pii.mask_phone(pii.decrypt(draft["phone"])), "phone_on_record": self.phone_on_record,
            "step": 5,
        }

    def get(self, request):
        if not self.draft.get("category"):
            return redirect("appeals:file-popup")
        return render(request, self.template_name, self._context())

    def post(self, request):
        draft = self.draft
        if not draft.get("category"):
            return redirect("appeals:file-popup")
        try:
            identity = self.identity()
            popup = self._popup() if identity.confirmed else None
            ratelimit.hit("file_ip", ratelimit.client_ip(request))
            ratelimit.hit("file_id", pii.id_hash(identity.id_number))
            # The draft is filed once: a double tap on "submit" sends two requests with it.
            with once("file", draft["draft_key"]):
                appeal, folded = services.appeal_file(
                    resident=identity.resident, category=draft["category"], popup=popup, identity=identity,
                    popup_type_claimed=draft.get("popup_type_claimed"),
                    community=Community.objects.filter(pk=draft.get("community_id") or 0).first(),
                    address_text=draft.get("address_text", ""), description=draft.get("description", ""),
                    contact_phone=pii.decrypt(draft["phone"]), draft_key=draft["draft_key"],
                    currently_outside_city=bool(draft.get("currently_outside_city")),
                    outside_since=dt.date.fromisoformat(draft["outside_since"]) if draft.get("outside_since") else None,
                    wishes_to_return=bool(draft.get("wishes_to_return")),
                    filer_unconfirmed=not identity.confirmed,
                )
        except ApplicationError as exc:
            # Draft and pictures stay in the session: the resident can submit again later.
            context = self._context()
            context["error"] = exc.message
            if isinstance(exc, ratelimit.RateLimited):
                return retry_after(render(request, self.template_name, context, status=429), exc.retry_after)
            return render(request, self.template_name, context, status=400)
        request.session.pop(SESSION_KEY, None)
        request.session[DONE_KEY] = {"reference": appeal.reference, "folded": folded, "pk": appeal.pk}
        return redirect("appeals:file-done")


class DoneView(View):
    template_name = "appeals/public/done.html"

    def get(self, request):
        done = request.session.get(DONE_KEY)
        if not done:
            return redirect("appeals:start")
        appeal = Appeal.objects.filter(pk=done["pk"]).first()
        return render(request, self.template_name, {"done": done, "appeal": appeal,
                                                    "sla_hours": settings.APPEALS_SLA_HOURS})


class StatusView(View):
    """Reference + ID + phone by POST; answers the same for every kind of mismatch."""

    template_name = "appeals/public/status.html"

    def get(self, request):
        return render(request, self.template_name, {"form": forms.StatusForm()})

    def post(self, request):
        form = forms.StatusForm(request.POST)
        appeal = found = None
        status = 400
        if form.is_valid():
            try:
                ratelimit.hit("status_ip", ratelimit.client_ip(request))
            except ratelimit.RateLimited as exc:
                form.add_error(None, exc.message)
                return retry_after(render(request, self.template_name, {"form": form}, status=429), exc.retry_after)
            else:
                found = selectors.appeal_for_status(**form.cleaned_data)
                if found is None:
                    form.add_error(None, _("We found no appeal with these details. Please check the reference "
                                           "number, ID number and phone."))
                    status = 404
                else:
                    appeal = found.appeal
        if appeal is None:
            return render(request, self.template_name, {"form": form}, status=status)
        if not found.phone_on_record:
            # Only the contact phone matched: show the progress of this filing and nothing the
            # person did not give us (no popup reasons, community, outcome text or merged appeal).
            events = selectors.appeal_history(appeal, public_only=True).exclude(
                kind__in=[AppealEvent.Kind.MERGED, AppealEvent.Kind.MERGED_IN])
            return render(request, self.template_name, {
                "appeal": appeal, "limited": True, "events": events,
                "evidence_count": selectors.appeal_evidence(appeal).count(),
                "steps": progress.status_history(appeal, events, limited=True),
                "next_step": progress.status_next_step(appeal, limited=True),
            })
        if appeal.merged_into_id:
            appeal = appeal.merged_into
        events = selectors.appeal_history(appeal, public_only=True)
        community_step = clearance_progress_for_appeal(appeal)
        return render(request, self.template_name, {
            "appeal": appeal, "events": events,
            "evidence_count": selectors.appeal_evidence(appeal).count(),
            "why": popup_explain(appeal.popup) if appeal.popup_id else [],
            "community_step": community_step,
            "steps": progress.status_history(appeal, events, limited=False, community_step=community_step),
            "next_step": progress.status_next_step(appeal, limited=False, community_step=community_step),
        })


class EvidenceLinkView(View):
    """The page behind the "please add evidence" SMS: expiring, single-use, asks for nothing else."""

    template_name = "appeals/public/evidence_link.html"

    def get(self, request, token):
        try:
            link = services.appeal_link_get(token)
        except ApplicationError as exc:
            return render(request, self.template_name, {"invalid": exc.message}, status=410)
        return render(request, self.template_name, {"appeal": link.appeal, "form": forms.EvidenceLinkForm(),
                                                    "max_files": settings.APPEALS_EVIDENCE_MAX_FILES})

    def post(self, request, token):
        form = forms.EvidenceLinkForm(request.POST)
        uploads = request.FILES.getlist("files")
        try:
            link = services.appeal_link_get(token)
        except ApplicationError as exc:
            return render(request, self.template_name, {"invalid": exc.message}, status=410)
        if not form.is_valid() or not uploads:
            form.add_error(None, _("Please choose at least one picture."))
            return render(request, self.template_name, {"appeal": link.appeal, "form": form}, status=400)
        try:
            for _upload in uploads:  # one hit per picture, as on the filing form
                ratelimit.hit("upload_ip", ratelimit.client_ip(request))
            appeal = services.appeal_link_submit(token=token, uploads=uploads, note=form.cleaned_data["note"])
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            return render(request, self.template_name, {"appeal": link.appeal, "form": form}, status=400)
        return render(request, self.template_name, {"sent": True, "appeal": appeal})
