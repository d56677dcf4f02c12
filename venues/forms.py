"""Forms of the supervisor and venue-manager pages (validation of shape only; rules live in
venues.services)."""

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

from healthkit import clock, inputs
from healthkit.errors import ApplicationError
from healthkit.filtering import FilterForm
from healthkit.inputs import SearchFormField as SearchField
from healthkit.inputs import TextFormField
from venues import selectors
from venues.models import RiskWindow, Venue


class VenueSearchForm(FilterForm):
    # A search longer than any name is refused, not cut to a shorter one (which finds other venues).
    q = SearchField(label=_("Name or venue code"), required=False, max_length=60)

    def clean_q(self) -> str:
        return self.cleaned_data["q"].strip()

    def build_filters(self, d: dict) -> str:
        return d.get("q", "")


_DT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class RegisterRangeForm(FilterForm):
    """The register's period; none given is the last day."""

    start = inputs.DateTimeFormField(label=_("From (inclusive)"), widget=_DT)
    end = inputs.DateTimeFormField(label=_("To (exclusive)"), widget=_DT)

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end"):
            try:
                data["period"] = selectors.register_range(data["start"], data["end"])
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from None
        return data

    def default_filters(self) -> selectors.RegisterRange:
        end = clock.localtime().replace(second=0, microsecond=0)
        return selectors.RegisterRange(start=end - dt.timedelta(days=1), end=end)

    def build_filters(self, d: dict) -> selectors.RegisterRange:
        return d["period"]


class RiskWindowFilterForm(FilterForm):
    state = forms.ChoiceField(label=_("State"), required=False,
                              choices=[("", _("All")), *RiskWindow.State.choices])

    def build_filters(self, d: dict) -> str:
        return d.get("state") or ""


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
