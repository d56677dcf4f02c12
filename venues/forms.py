"""Forms of the supervisor and venue-manager pages (validation of shape only; rules live in
venues.services)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from healthkit import inputs
from healthkit.inputs import SearchFormField as SearchField
from healthkit.inputs import TextFormField
from venues.models import RiskWindow, Venue


class VenueSearchForm(forms.Form):
    q = SearchField(label=_("Name or venue code"), required=False)

    def clean_q(self) -> str:
        return self.cleaned_data["q"].strip()[:60]


_DT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class RegisterRangeForm(forms.Form):
    start = inputs.DateTimeFormField(label=_("From (inclusive)"), widget=_DT)
    end = inputs.DateTimeFormField(label=_("To (exclusive)"), widget=_DT)


class RiskWindowForm(forms.Form):
    starts_at = inputs.DateTimeFormField(label=_("From (inclusive)"), widget=_DT)
    ends_at = inputs.DateTimeFormField(label=_("To (exclusive)"), widget=_DT)
    risk_level = forms.ChoiceField(label=_("Risk level"), choices=RiskWindow.Level.choices)
    reason = TextFormField(label=_("Reason"), max_length=200)


class RiskWindowCreateForm(RiskWindowForm):
    venue_code = TextFormField(label=_("Venue code"), max_length=16)

    field_order = ["venue_code", "starts_at", "ends_at", "risk_level", "reason"]

    def clean_venue_code(self) -> Venue:
        code = inputs.venue_code(self.cleaned_data["venue_code"])
        venue = Venue.objects.filter(code=code).first()
        if venue is None:
            raise forms.ValidationError(_("No venue has this code."))
        return venue


class RiskWindowCorrectForm(RiskWindowForm):
    correction = TextFormField(label=_("Why it is corrected"), max_length=200)


class RiskWindowWithdrawForm(forms.Form):
    reason = TextFormField(label=_("Why it is withdrawn"), max_length=200)
