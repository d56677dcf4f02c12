"""Forms of the resident pages and the operator console (validation only; services decide)."""

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

from appeals.filters import PlainTextInput
from appeals.models import OPERATOR_OUTCOMES, OUTCOME_LABELS, Appeal, AppealContact
from appeals.services import stranded_problem
from communities import pii
from communities.models import User
from healthkit import clock
from healthkit.inputs import DateFormField, TextFormField
from healthkit.models import PopupType

UNLISTED = "unlisted"


class IdentifyForm(forms.Form):
    name = TextFormField(label=_("Name (as on your ID card)"), max_length=64)
    id_number = TextFormField(label=_("National ID number"), max_length=32,
                                widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "text"}))
    phone = TextFormField(label=_("Mobile phone"), max_length=20,
                            widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}))


class CodeForm(forms.Form):
    code = TextFormField(label=_("6-digit code from the SMS"), max_length=6, min_length=6,
                           widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}))


def clean_outside_city(form: forms.Form, data: dict, *, born: dt.date | None = None) -> dict:
    """The "outside the city" answers: a stranded appeal needs the date (over a month ago; the
    relief job selects by it, see services.stranded_problem) and means outside and wishing to
    return; no form takes a date in the future, or one before the person was born (`born`, from
    the ID number)."""
    since = data.get("outside_since")
    if since and born and since < born:
        form.add_error("outside_since", _("This date is before the date of birth in the ID number."))
    elif data.get("category") == Appeal.Category.STRANDED and "outside_since" not in form.errors:
        problem = stranded_problem(since)
        if problem:
            form.add_error("outside_since", problem)
        else:
            data["currently_outside_city"] = data["wishes_to_return"] = True
    elif since and since > clock.today():
        form.add_error("outside_since", _("This date is in the future."))
    return data


class PopupCategoryForm(forms.Form):
    popup = forms.ChoiceField(label=_("Which popup are you appealing?"), widget=forms.RadioSelect)
    popup_type_claimed = forms.TypedChoiceField(
        label=_("If we do not show your popup: which number does it show?"), required=False, coerce=int,
        empty_value=None, choices=[("", _("I am not sure"))] + list(PopupType.choices))
    category = forms.ChoiceField(label=_("What kind of appeal is this?"), choices=Appeal.Category.choices,
                                 widget=forms.RadioSelect)
    currently_outside_city = forms.BooleanField(label=_("I am outside the city now"), required=False)
    outside_since = DateFormField(label=_("Outside the city since"), required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}))
    wishes_to_return = forms.BooleanField(label=_("I wish to return to the city"), required=False)

    def __init__(self, *args, popups=(), born: dt.date | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.born = born
        choices = [(str(p.pk), _("Popup %(type)s, since %(date)s") % {
            "type": p.get_popup_type_display(), "date": f"{clock.local_text(p.raised_at, '%Y-%m-%d')}"}) for p in popups]
        choices.append((UNLISTED, _("I have a popup that is not listed here")))
        self.fields["popup"].choices = choices

    def clean(self):
        return clean_outside_city(self, super().clean(), born=self.born)


class CommunitySearchForm(forms.Form):
    address = TextFormField(label=_("Your address or the name of your compound (小区)"), max_length=200)


class DetailsForm(forms.Form):
    description = TextFormField(
        label=_("Describe your situation"), max_length=4000, required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Where you have been and when, and why you think the popup is wrong. Do not write your ID number."))


class NoEchoInput(forms.TextInput):
    """A text box that never writes back what was typed: a page answering a look-up (hit or miss)
    must not carry the ID number or phone (shared screens, caches, saved pages)."""

    def format_value(self, value):
        return None


class StatusForm(forms.Form):
    reference = TextFormField(label=_("Reference number"), max_length=20)
    id_number = TextFormField(label=_("National ID number"), max_length=32,
                              widget=NoEchoInput(attrs={"autocomplete": "off"}))
    phone = TextFormField(label=_("Mobile phone"), max_length=20,
                          widget=NoEchoInput(attrs={"inputmode": "tel", "autocomplete": "off"}))


class EvidenceLinkForm(forms.Form):
    note = TextFormField(label=_("Anything to add"), max_length=4000, required=False,
                           widget=forms.Textarea(attrs={"rows": 4}))


# --- Console ---------------------------------------------------------------------------------

class PersonSearchForm(forms.Form):
    # On the queue page: written in Python like the queue's filter form (appeals.filters).
    id_number = TextFormField(label=_("Exact ID number"), max_length=32, required=False,
                              widget=PlainTextInput(attrs={"autocomplete": "off"}))
    phone = TextFormField(label=_("Phone"), max_length=20, required=False, widget=PlainTextInput)

    def clean(self):
        data = super().clean()
        if not data.get("id_number") and not data.get("phone"):
            raise forms.ValidationError(_("Enter an ID number or a phone number."))
        return data


class PhoneEntryForm(forms.Form):
    name = TextFormField(label=_("Caller's name"), max_length=64)
    id_number = TextFormField(label=_("National ID number"), max_length=32, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    phone = TextFormField(label=_("Call-back phone"), max_length=20)
    category = forms.ChoiceField(label=_("Category"), choices=Appeal.Category.choices)
    popup_type_claimed = forms.TypedChoiceField(label=_("Popup number the caller sees"), required=False, coerce=int,
                                                empty_value=None, choices=[("", "—")] + list(PopupType.choices),
                                                help_text=_("Links the appeal to the caller's open popup of "
                                                            "this number, when there is exactly one."))
    currently_outside_city = forms.BooleanField(label=_("The caller is outside the city now"), required=False)
    outside_since = DateFormField(label=_("Outside the city since"), required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}))
    wishes_to_return = forms.BooleanField(label=_("The caller wishes to return to the city"), required=False)
    address = TextFormField(label=_("Address or compound"), max_length=200, required=False)
    description = TextFormField(label=_("What the caller said"), widget=forms.Textarea(attrs={"rows": 4}), required=False)
    call_outcome = forms.ChoiceField(label=_("Call outcome"), choices=AppealContact.Outcome.choices,
                                     initial=AppealContact.Outcome.REACHED)
    call_note = TextFormField(label=_("Call note"), max_length=1000, required=False)
    identity_acknowledged = forms.BooleanField(
        label=_("I have checked with the caller"), required=False,
        help_text=_("Needed only when the name does not match the registry for the ID number (or the number is "
                    "not registered): the appeal is then filed as an unconfirmed filer's."))

    def clean(self):
        data = super().clean()
        return clean_outside_city(self, data, born=pii.birth_date(data.get("id_number") or ""))


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        label=_("Operator"),
        queryset=User.objects.filter(role__in=[User.Role.OPERATOR, User.Role.SUPERVISOR], is_active=True).order_by("username"))


class PriorityForm(forms.Form):
    priority = forms.TypedChoiceField(label=_("Priority"), choices=Appeal.Priority.choices, coerce=int)
    reason = TextFormField(label=_("Reason"), max_length=200, required=False)


class LinkPopupForm(forms.Form):
    popup = forms.IntegerField(label=_("Popup"), widget=forms.HiddenInput)


class MergeForm(forms.Form):
    into_reference = TextFormField(label=_("Merge this appeal into (reference)"), max_length=20)


class RequestEvidenceForm(forms.Form):
    message = TextFormField(label=_("What is missing (sent in the SMS)"), max_length=140, required=False)


class RouteForm(forms.Form):
    community = forms.IntegerField(widget=forms.HiddenInput, required=False)
    community_code = TextFormField(label=_("Or a community code"), max_length=15, required=False)
    reason = TextFormField(label=_("Note for the community"), max_length=500, required=False)


class CloseForm(forms.Form):
    OUTCOMES = [(code, OUTCOME_LABELS[code]) for code in OPERATOR_OUTCOMES]
    outcome = forms.ChoiceField(label=_("Outcome"), choices=OUTCOMES)
    reason = TextFormField(label=_("Reason (shown to the resident)"), max_length=200)


class ContactForm(forms.Form):
    direction = forms.ChoiceField(label=_("Direction"), choices=AppealContact.Direction.choices)
    outcome = forms.ChoiceField(label=_("Outcome"), choices=AppealContact.Outcome.choices)
    note = TextFormField(label=_("Note"), max_length=1000, required=False)


class ConfirmFilerForm(forms.Form):
    reason = TextFormField(label=_("How did you check who the filer is?"), max_length=200)


class RevealForm(forms.Form):
    reason = TextFormField(label=_("Why do you need the full details?"), max_length=200)
