"""Every date and date-time field of every form and filter of the product (console filters, the
queue's django-filter set, risk windows, the visitor register, filing) refuses a year outside the
input boundary's window (healthkit.inputs.year_window) as a field error: a day after 9999-12-31 or
an instant of year 1 moved to UTC does not exist, and the page answered 500 (OverflowError)."""

from __future__ import annotations

import importlib
import pkgutil

import django_filters
from django import forms
from django.core.exceptions import ValidationError

PACKAGES = ("healthkit", "communities", "appeals", "venues")
DATES = ("9999-12-31", "0001-01-01", "1900-01-01")
INSTANTS = ("9999-12-31T23:30", "0001-01-01T00:00", "9999-12-31T23:30:00+08:00", "2024-05-01T08:00:00+16:00")


def _project_modules() -> None:
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if ".migrations" not in info.name and ".management" not in info.name:
                importlib.import_module(info.name)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def _date_fields() -> list[tuple[str, forms.Field]]:
    """(where, field) for every declared date or date-time field of the project's forms and filter sets."""
    _project_modules()
    fields = []
    for form in _subclasses(forms.BaseForm):
        # not the admin's model forms: the admin builds their date-times from its split widgets
        if form.__module__.split(".")[0] in PACKAGES and not form.__module__.endswith(".admin"):
            fields += [(f"{form.__module__}.{form.__name__}.{name}", field)
                       for name, field in form.base_fields.items()
                       if isinstance(field, forms.DateField | forms.DateTimeField)]
    for filterset in _subclasses(django_filters.FilterSet):
        if filterset.__module__.split(".")[0] in PACKAGES:
            for name, flt in filterset.base_filters.items():
                if issubclass(flt.field_class, forms.DateField | forms.DateTimeField):
                    fields.append((f"{filterset.__module__}.{filterset.__name__}.{name}", flt.field))
    return fields


def test_every_date_field_refuses_a_year_outside_the_window():
    fields = _date_fields()
    assert len(fields) >= 15  # the walk finds the forms (filters, risk windows, register, filing)
    accepted = []
    for where, field in fields:
        values = INSTANTS if isinstance(field, forms.DateTimeField) else DATES
        for value in values:
            try:
                field.clean(value)
            except ValidationError:
                continue
            accepted.append(f"{where} accepted {value}")
    assert not accepted, "\n".join(accepted)


def test_every_date_field_accepts_a_plausible_date():
    for where, field in _date_fields():
        value = "2024-05-01T08:00" if isinstance(field, forms.DateTimeField) else "2024-05-01"
        assert field.clean(value), where
