"""Forms of the registry's own console pages."""

import datetime as dt

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from communities import pii
from communities.models import PersonalDataAccess
from healthkit import clock


def plausible_date(value: dt.date | None) -> None:
    """The input boundary's year window (settings INPUT_YEAR_MIN, INPUT_YEARS_AHEAD; the same rule
    as healthkit.inputs, which this app may not import): a day added to year 9999 overflows."""
    first = getattr(settings, "INPUT_YEAR_MIN", 2019)
    last = clock.today().year + getattr(settings, "INPUT_YEARS_AHEAD", 1)
    if value is not None and not first <= value.year <= last:
        raise ValidationError(_("The year must lie between %(first)d and %(last)d."), code="year",
                              params={"first": first, "last": last})


class AuditSearchForm(forms.Form):
    """Search the access audit. Posted, never in a URL: the ID number typed here is turned into its
    keyed hash and neither stored nor shown back (the page renders the field empty)."""

    staff = forms.CharField(label=_("Staff account (user name)"), max_length=150, required=False)
    id_number = forms.CharField(label=_("Resident's ID number"), max_length=24, required=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
                                help_text=_("Matched through its keyed hash; it is not kept or shown again."))
    since = forms.DateField(label=_("From (date)"), required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            validators=[plausible_date])
    until = forms.DateField(label=_("To (date, inclusive)"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}), validators=[plausible_date])
    action = forms.ChoiceField(label=_("Action"), required=False,
                               choices=[("", _("Any"))] + list(PersonalDataAccess.Action.choices))

    def clean_id_number(self) -> str:
        value = self.cleaned_data["id_number"].strip()
        if not value:
            return ""
        try:
            return pii.validate_id_number(value)
        except ValidationError as exc:
            raise ValidationError(_("That is not a valid ID number: %(problem)s") % {"problem": exc.messages[0]},
                                  code="id_number") from None

    @staticmethod
    def start_of(day: dt.date | None) -> dt.datetime | None:
        if day is None:
            return None
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
