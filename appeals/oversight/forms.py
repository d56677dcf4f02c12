"""The dashboard's filter form (shape only; the selectors apply it)."""

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

from appeals.filters import PlainDateInput, PlainSelect, PlainTextInput, cached_options, plain_label
from appeals.oversight.selectors import DashboardFilters
from communities.models import Community, District
from healthkit import clock
from healthkit.filtering import FilterForm
from healthkit.inputs import DateFormField, TextFormField
from healthkit.models import PopupType

MAX_DAYS = 366


class DashboardFilterForm(FilterForm):
    # The widgets write Django's markup in Python (appeals.filters): through the template engine,
    # one include per field and per option, the five fields cost a fifth of the page.
    date_from = DateFormField(label=_("From"), required=False, widget=PlainDateInput(attrs={"type": "date"}))
    date_to = DateFormField(label=_("Until"), required=False, widget=PlainDateInput(attrs={"type": "date"}))
    district = forms.ModelChoiceField(label=_("District"), queryset=District.objects.order_by("code"),
                                      required=False, empty_label=_("All"), widget=PlainSelect)
    community = TextFormField(label=_("Community (code)"), max_length=15, required=False, widget=PlainTextInput)
    popup_type = forms.TypedChoiceField(label=_("Popup type"), coerce=int, empty_value=None, required=False,
                                        choices=[("", _("All")), *PopupType.choices], widget=PlainSelect)

    # The districts change rarely: the drop-down's options come from the cache (as the queue's do),
    # not from a query on every page; a chosen district is still checked by the field's queryset.
    DISTRICT_OPTIONS_KEY = "oversight:dashboard-choices:district"
    CHOICES_TIMEOUT = 120

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["district"]
        options = cached_options(self.DISTRICT_OPTIONS_KEY, field.queryset, self.CHOICES_TIMEOUT)
        field.widget.choices = [("", field.empty_label), *options]

    def render(self, template_name=None, context=None, renderer=None):
        # The labels (label_tag renders the form's label template) written in Python, as the widgets.
        if template_name == self.template_name_label and context is not None:
            return plain_label(context)
        return super().render(template_name, context, renderer)

    def clean_community(self) -> Community | None:
        code = self.cleaned_data.get("community", "").strip()
        if not code:
            return None
        community = Community.objects.select_related("street").filter(code=code).first()
        if community is None:
            raise forms.ValidationError(_("No community has this code."))
        return community

    def clean(self):
        data = super().clean()
        default = DashboardFilters.default()
        date_to = data.get("date_to") or default.date_to
        date_from = data.get("date_from") or date_to - dt.timedelta(days=29)
        if date_from > date_to:
            self.add_error("date_from", _("The start is after the end."))
        elif (date_to - date_from).days >= MAX_DAYS:
            self.add_error("date_from", _("Choose at most a year."))
        data["date_from"], data["date_to"] = date_from, date_to
        return data

    def default_filters(self) -> DashboardFilters:
        return DashboardFilters.default(clock.today())

    def build_filters(self, d: dict) -> DashboardFilters:
        community = d.get("community")
        return DashboardFilters(date_from=d["date_from"], date_to=d["date_to"], district=d.get("district"),
                                community=community, popup_type=d.get("popup_type"))
