"""Console forms of the popup core (shape only; selectors apply them)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from communities.models import District
from healthkit.filtering import FilterForm
from healthkit.inputs import DateFormField, TextFormField
from healthkit.models import PopupCase, PopupType
from healthkit.selectors import PopupListFilters


class PopupListFilterForm(FilterForm):
    STATES = [("open", _("Open (active or under review)")), ("all", _("All")), *PopupCase.State.choices]
    state = forms.ChoiceField(label=_("State"), choices=STATES, required=False)
    type = forms.TypedChoiceField(label=_("Popup type"), coerce=int, empty_value=None, required=False,
                                  choices=[("", _("Any")), *PopupType.choices])
    source = forms.ChoiceField(label=_("Source"), choices=[("", _("Any")), *PopupCase.Source.choices], required=False)
    district = forms.ModelChoiceField(label=_("District"), queryset=District.objects.order_by("code"), required=False,
                                      empty_label=_("Any"))
    community = TextFormField(label=_("Community (code)"), max_length=15, required=False)
    raised_after = DateFormField(label=_("Raised from"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    raised_before = DateFormField(label=_("Raised until"), required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}))
    lifted_after = DateFormField(label=_("Ended from"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    lifted_before = DateFormField(label=_("Ended until"), required=False,
                                    widget=forms.DateInput(attrs={"type": "date"}))
    lifted_by = forms.ChoiceField(label=_("Lifted by"), required=False, choices=[
        ("", _("Anyone")), ("auto", _("Automatically (the rules)")), ("person", _("A person"))])

    def build_filters(self, d: dict) -> PopupListFilters:
        return PopupListFilters(
            state=d.get("state") or "open", popup_type=d.get("type"), source=d.get("source") or "",
            district=d["district"].pk if d.get("district") else None, community=(d.get("community") or "").strip(),
            raised_after=d.get("raised_after"), raised_before=d.get("raised_before"),
            lifted_after=d.get("lifted_after"), lifted_before=d.get("lifted_before"), lifted_by=d.get("lifted_by") or "")
