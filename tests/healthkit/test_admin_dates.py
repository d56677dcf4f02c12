"""Every date and date-time field of every admin form (the policy versions staff edit, and any
other model with a date the admin lets staff type) refuses a year outside the input boundary's
window (healthkit.inputs.year_window), as the console's forms do: a policy version in force
from year 1 or until 9999 was accepted."""

import pytest
from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.test import Client, RequestFactory
from django.utils import translation

from healthkit import clock
from healthkit.models import PopupPolicy
from tests.factories import UserFactory
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db
YEARS = ("0001", "1900", "9999")


def _date_fields():
    """(where, field) for every date or date-time field of every registered admin's form."""
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(role="administrator", is_staff=True, is_superuser=True)
    fields = []
    for model, model_admin in admin.site._registry.items():
        form = model_admin.get_form(request)
        fields += [(f"{model._meta.label}.{name}", field) for name, field in form.base_fields.items()
                   if isinstance(field, forms.DateField | forms.DateTimeField | forms.SplitDateTimeField)]
    return fields


def test_every_admin_date_field_refuses_a_year_outside_the_window():
    fields = _date_fields()
    assert any(where == "healthkit.PopupPolicy.effective_from" for where, _field in fields)
    accepted = []
    with translation.override("en"):
        for where, field in fields:
            for year in YEARS:
                value = [f"{year}-12-31", "23:30:00"] if isinstance(field, forms.SplitDateTimeField) else f"{year}-12-31"
                try:
                    field.clean(value)
                except ValidationError:
                    continue
                accepted.append(f"{where} accepted year {year}")
    assert not accepted, "\n".join(accepted)


def test_every_admin_date_field_accepts_a_plausible_date():
    for where, field in _date_fields():
        value = ["2024-05-01", "08:00:00"] if isinstance(field, forms.SplitDateTimeField) else "2024-05-01"
        assert field.clean(value), where


@pytest.mark.parametrize("year", YEARS)
def test_a_policy_version_outside_the_window_is_a_field_error_and_saves_nothing(year):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(UserFactory(role="administrator", is_staff=True, is_superuser=True))
    before = list(PopupPolicy.objects.values_list("pk", "effective_from", "effective_to"))
    with clock.frozen_at(cst(2022, 8, 1)):
        response = client.post("/admin/healthkit/popuppolicy/add/", {
            "popup_type": 1, "version": f"{year}-12-31", "effective_from_0": f"{year}-12-31",
            "effective_from_1": "00:00:00", "effective_to_0": "", "effective_to_1": "",
            "params": '{"window_days": 3, "case_free_days": 7}', "source": "test",
        })
    assert response.status_code == 200
    assert "The year must lie between 2019 and 2023." in response.content.decode()
    assert list(PopupPolicy.objects.values_list("pk", "effective_from", "effective_to")) == before


@pytest.mark.parametrize("value", [10**10, 10**6, -7, 0, 1.5, "7", True])
@pytest.mark.parametrize("key", ["window_days", "case_free_days", "deadline_hours"])
def test_a_policy_span_the_engine_cannot_read_or_past_a_year_is_refused(key, value):
    # the engine casts these to int for make_interval: text, a fraction or 10**10 stopped every
    # evaluation; a negative or a span of millennia dated popups past any calendar
    popup_type = 4 if key == "deadline_hours" else 1
    params = {"window_days": 7, "deadline_hours": 72, "triggers": ["arrival"], key: value}
    policy = PopupPolicy(popup_type=popup_type, version="x", effective_from=cst(2030, 1, 1), params=params)
    with translation.override("en"), pytest.raises(ValidationError, match=f"{key} must be a whole number from 1 to"):
        policy.full_clean()


def test_a_policy_span_within_a_year_is_accepted():
    PopupPolicy(popup_type=4, version="x", effective_from=cst(2030, 1, 1),
                params={"deadline_hours": 48, "triggers": ["arrival"]}).clean()
