"""Forms of community clearance: the resident's confirmation and the worker's decisions."""

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from appeals.clearance.models import CALL_DIRECTIONS, CALL_OUTCOMES, ClearanceTask
from appeals.clearance.selectors import WorklistFilters
from communities import pii
from communities.models import District
from healthkit.filtering import FilterForm
from healthkit.inputs import DateFormField, TextFormField
from healthkit.models import PopupType


class ConfirmationForm(forms.Form):
    """What the resident confirms through the SMS link (no ID number is ever asked)."""

    LOCATION = [("in_city", _("I am in the city now")), ("outside", _("I am outside the city"))]
    MEANS = [
        ("already_back", _("Already back")), ("train", _("Train")), ("flight", _("Flight")),
        ("car", _("Own car")), ("coach", _("Coach")), ("other", _("Other")),
    ]
    SYMPTOMS = [
        ("fever", _("Fever")), ("cough", _("Cough")), ("sore_throat", _("Sore throat")),
        ("fatigue", _("Fatigue")), ("loss_of_smell", _("Loss of smell or taste")),
    ]

    location = forms.ChoiceField(label=_("Where are you now?"), choices=LOCATION, widget=forms.RadioSelect)
    current_place = TextFormField(label=_("City and county you are in now"), max_length=100)
    outside_since = DateFormField(label=_("Outside the city since (if outside)"), required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}))
    return_date = DateFormField(label=_("Planned return date (if outside)"), required=False,
                                  widget=forms.DateInput(attrs={"type": "date"}))
    return_means = forms.ChoiceField(label=_("How will you return?"), choices=MEANS)
    address = TextFormField(label=_("Your address in the community (building, unit, room)"), max_length=200)
    contact_phone = TextFormField(label=_("Phone the community can reach you on"), max_length=20)
    symptoms = forms.MultipleChoiceField(label=_("In the last 7 days I had (tick none if none)"), choices=SYMPTOMS,
                                         required=False, widget=forms.CheckboxSelectMultiple)
    contact_with_case = forms.BooleanField(label=_("I was in contact with a case or a close contact"), required=False)
    declaration = forms.BooleanField(label=_("I declare that this information is true and complete"))
    signature = TextFormField(label=_("Sign the commitment letter: type your full name"), max_length=64,
                                required=False)

    def __init__(self, *args, commitment: bool = False, born: dt.date | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.commitment, self.born = commitment, born
        if not commitment:
            del self.fields["signature"]

    def clean_contact_phone(self) -> str:
        try:
            return pii.validate_phone(self.cleaned_data["contact_phone"])
        except ValidationError as exc:
            raise ValidationError(_("Please enter a valid mobile number.")) from exc

    def clean(self):
        data = super().clean()
        since = data.get("outside_since")
        if since and self.born and since < self.born:
            self.add_error("outside_since", _("This date is before the date of birth in the ID number."))
        if data.get("location") == "outside" and not data.get("return_date"):
            self.add_error("return_date", _("Please give the date you plan to return."))
        if self.commitment and not (data.get("signature") or "").strip():
            self.add_error("signature", _("Please sign the commitment letter by typing your full name."))
        return data

    def confirmation(self) -> dict:
        """The answers as stored on the task (dates as ISO strings; phone kept apart, encrypted)."""
        d = self.cleaned_data
        return {
            "location": d["location"], "current_place": d["current_place"],
            "outside_since": d["outside_since"].isoformat() if d.get("outside_since") else None,
            "return_date": d["return_date"].isoformat() if d.get("return_date") else None,
            "return_means": d["return_means"], "address": d["address"],
            "health": {"symptoms": d.get("symptoms") or [], "contact_with_case": bool(d.get("contact_with_case")),
                       "declared_true": bool(d.get("declaration"))},
        }


class CommitmentForm(forms.Form):
    signature = TextFormField(label=_("Type your full name to sign"), max_length=64)
    agree = forms.BooleanField(label=_("I have read the commitment letter and sign it"))


class AcceptForm(forms.Form):
    reason = TextFormField(label=_("Reason (the resident sees it)"), max_length=500,
                             widget=forms.Textarea(attrs={"rows": 2}))


class RejectForm(forms.Form):
    reason = TextFormField(label=_("Reason (the resident sees it)"), max_length=500,
                             widget=forms.Textarea(attrs={"rows": 2}))
    next_step = forms.ChoiceField(label=_("Next step for the resident"), choices=ClearanceTask.NextStep.choices)


class InfoForm(forms.Form):
    question = TextFormField(label=_("What do you need to know?"), max_length=300,
                               widget=forms.Textarea(attrs={"rows": 2}))


class InvestigateForm(forms.Form):
    # Radio buttons with none chosen: the worker must pick the outcome, nothing is pre-selected.
    outcome = forms.ChoiceField(label=_("Outcome of the investigation"), choices=ClearanceTask.Outcome.choices,
                                widget=forms.RadioSelect)
    reason = TextFormField(label=_("Findings"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    confirm_high_risk = forms.BooleanField(
        label=_("I confirm the high-risk link: the resident goes into centralised quarantine (red code)."),
        required=False)

    def clean(self):
        data = super().clean()
        if data.get("outcome") == ClearanceTask.Outcome.HIGH_RISK and not data.get("confirm_high_risk"):
            self.add_error("confirm_high_risk", _("A high-risk outcome sends the resident to centralised "
                                                  "quarantine: tick the box to confirm it."))
        return data


class CallForm(forms.Form):
    direction = forms.ChoiceField(label=_("Direction"), choices=CALL_DIRECTIONS)
    outcome = forms.ChoiceField(label=_("Outcome"), choices=CALL_OUTCOMES)
    note = TextFormField(label=_("Note"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RevealForm(forms.Form):
    reason = TextFormField(label=_("Why do you need the full details?"), max_length=200)


class WorklistFilterForm(FilterForm):
    STATES = [("open", pgettext_lazy("tasks still in progress", "Open")), ("all", _("All")), *ClearanceTask.State.choices]
    state = forms.ChoiceField(label=_("State"), choices=STATES, required=False)
    origin = forms.ChoiceField(label=_("Origin"), choices=[("", _("Any")), *ClearanceTask.Origin.choices],
                               required=False)
    priority = forms.TypedChoiceField(label=_("Priority"), coerce=int, empty_value=None, required=False,
                                      choices=[("", _("Any")), *ClearanceTask.Priority.choices])
    community = forms.TypedChoiceField(label=_("Community"), coerce=int, empty_value=None, required=False,
                                       choices=[])
    overdue = forms.BooleanField(label=_("Past SLA only"), required=False)
    # The task's (C000123) or its appeal's (261202-4JGZ9PR): a resident on the phone reads out the latter.
    reference = TextFormField(label=_("Reference"), max_length=20, required=False)
    district = forms.ModelChoiceField(label=_("District"), queryset=District.objects.order_by("code"), required=False,
                                      empty_label=_("Any"))
    popup_type = forms.TypedChoiceField(label=_("Popup type"), coerce=int, empty_value=None, required=False,
                                        choices=[("", _("Any")), *PopupType.choices])
    test_missing = forms.BooleanField(label=_("A test is missing"), required=False)

    def __init__(self, *args, communities=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["community"].choices = [("", _("Any")), *[(c.pk, c.name) for c in communities]]

    def build_filters(self, d: dict) -> WorklistFilters:
        """The filters chosen; none chosen is every open task (filters() is None for filters that
        could not be read, for which the worklist and its exports show nothing)."""
        return WorklistFilters(state=d.get("state") or "", origin=d.get("origin") or "", priority=d.get("priority"),
                               community=d.get("community"), overdue=bool(d.get("overdue")),
                               reference=d.get("reference") or "", district=d["district"].pk if d.get("district") else None,
                               popup_type=d.get("popup_type"), test_missing=bool(d.get("test_missing")))


class CheckpointForm(forms.Form):
    MEASURES = [("three_days_two_tests", _("Three days, two tests (days 1 and 3)")),
                ("home_observation", _("Home observation for 7 days, tests on days 1, 3 and 7"))]
    id_number = TextFormField(label=_("Resident's ID number (as read out on the phone)"), max_length=18,
                                widget=forms.TextInput(attrs={"autocomplete": "off"}))
    community = forms.TypedChoiceField(label=_("Community"), coerce=int, choices=[])
    measure = forms.ChoiceField(label=_("Follow-up"), choices=MEASURES)
    reason = TextFormField(label=_("Checkpoint, plate and what was agreed"), max_length=500,
                             widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, communities=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["community"].choices = [(c.pk, c.name) for c in communities]

    def clean_id_number(self) -> str:
        try:
            return pii.validate_id_number(self.cleaned_data["id_number"])
        except ValidationError as exc:
            raise ValidationError(_("Please check the ID number.")) from exc
