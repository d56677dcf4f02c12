"""The dashboard's filter form writes Django's own markup for each field (its widgets render in
Python, not through a template include per field and option): same inputs, options, selection."""

import pytest
from django import forms
from django.utils import translation

from appeals.oversight.forms import DashboardFilterForm
from tests.factories import CommunityFactory, DistrictFactory

pytestmark = pytest.mark.django_db

DJANGO_WIDGETS = {"date_from": forms.DateInput, "date_to": forms.DateInput, "district": forms.Select,
                  "community": forms.TextInput, "popup_type": forms.Select}


def _compact(html: str) -> str:
    return "\n".join(line.strip() for line in html.splitlines() if line.strip())


@pytest.mark.parametrize("data", [None, {"district": "first", "popup_type": "3", "date_from": "2022-11-01",
                                         "date_to": "2022-11-20", "community": "x"},
                                  {"popup_type": "9", "date_from": "not a date", "community": '"<b>"'}])
def test_every_field_renders_as_djangos_widget(data):
    # given districts to choose from and a bound (or unbound) form
    first = DistrictFactory(code="110105", name="朝阳区")
    DistrictFactory(code="110108", name="海淀区")
    CommunityFactory(code="x")
    if data and data.get("district") == "first":
        data = {**data, "district": str(first.pk)}
    form = DashboardFilterForm(data)
    form.is_valid()
    for name, field in form.fields.items():
        # when the field is rendered by its widget and by Django's widget of the same kind
        ours = field.widget
        theirs = DJANGO_WIDGETS[name](attrs=dict(ours.attrs))
        if hasattr(ours, "input_type"):
            theirs.input_type = ours.input_type
        if hasattr(ours, "choices"):
            theirs.choices = ours.choices
        value, attrs = form[name].value(), {"id": f"id_{name}"}
        # then the markup is the same
        assert ours.render(name, value, attrs) == _compact(theirs.render(name, value, attrs)), name


class _DjangoLabels(DashboardFilterForm):
    render = forms.Form.render  # the label through Django's template


@pytest.mark.parametrize("language", ["en", "zh-hans"])
@pytest.mark.parametrize("kwargs", [{}, {"attrs": {"class": "x", "hidden": True, "data-off": False}},
                                    {"label_suffix": ""}, {"contents": 'a <b>"&'}, {"tag": "legend"}])
def test_every_label_renders_as_djangos_template(language, kwargs):
    # given the form in a language, and the same form rendering its labels through Django's template
    with translation.override(language):
        ours, theirs = DashboardFilterForm(), _DjangoLabels()
        for name in ours.fields:
            # when a field's label is written, then it is the same markup
            assert ours[name].label_tag(**kwargs) == theirs[name].label_tag(**kwargs), name
    # and without an id (no tag): the label alone
    assert DashboardFilterForm(auto_id=False)["district"].label_tag() == _DjangoLabels(auto_id=False)["district"].label_tag()
