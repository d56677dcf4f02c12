"""The one way a console page or export reads its filters from a query string.

A filter value that cannot be read (a bad date, an unknown choice, a number out of range, a page
number that is not one) is never read as "no filter": the page answers 400 with the form and
the error next to the field, and lists, counts and exports nothing. Before, some pages fell back
to their defaults (the whole open list, the last 30 days), so a typing error in a filter showed
or exported far more than was asked for.

Every view that reads filters is a `FilteredView` (the test walks the URLconf for them):

- `filter_form_class`: a `FilterForm` (whose `filters()` is None when refused) or a
  django-filter `FilterSet`;
- `read_filters(data)` gives `(form, filters)`, filters None when refused, and marks the view so
  that its answer is a 400 whatever it renders;
- `page_params`: the query parameters this page reads as page numbers (positive integers).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# A page number past this is no page any list has (50 rows a page): a typing error, not a request.
PAGE_MAX = 1_000_000
ID_MAX = 2**63 - 1  # a row id (bigint) given as a cursor


class FilterForm(forms.Form):
    """A GET form of filters. `filters()`: the filters chosen (`default_filters()` when none is
    given); None when a value cannot be read, for which the page shows and exports nothing."""

    def default_filters(self) -> Any:
        return self.build_filters({})

    def build_filters(self, data: dict) -> Any:
        raise NotImplementedError

    def filters(self) -> Any:
        if not self.is_bound:
            return self.default_filters()
        if not self.is_valid():
            return None
        return self.build_filters(self.cleaned_data)


class PageField(forms.IntegerField):
    """A page number given in a link: a positive integer of ASCII digits, else a form error."""

    default_error_messages = {"invalid": gettext_lazy("Enter a page number (1, 2, 3 …).")}

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_value", PAGE_MAX)
        kwargs.setdefault("min_value", 1)
        super().__init__(**kwargs)

    def to_python(self, value):
        # "²".isdigit() and "١" are digits to int(): a page number is typed with ASCII digits only.
        if isinstance(value, str) and value.strip() and not (value.strip().isascii() and value.strip().isdigit()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


def single_values(data: QueryDict, names) -> dict[str, str]:
    """The names given more than once in a query string (?status=a&status=b): a filter reads one
    value, and picking the last in silence would list something else than one of the two asked."""
    return {name: _("Choose one value only.") for name in names if len(data.getlist(name)) > 1}


class FilteredView:
    """Mixin of every console page and export whose rows or figures a query string filters."""

    filter_form_class: type | None = None
    # Query parameters read as page numbers, and those read as row ids (a keyset cursor); they are
    # not fields of the form: a new filter starts at the first page.
    page_params: tuple[str, ...] = ()
    cursor_params: tuple[str, ...] = ()
    filters_refused = False

    def filter_form_kwargs(self) -> dict:
        return {}

    def read_navigation(self, data: QueryDict) -> dict[str, str]:
        """Read the page numbers and cursors into `self.pages`; the errors by parameter name."""
        errors: dict[str, str] = {}
        self.pages: dict[str, int | None] = {}
        for name in (*self.page_params, *self.cursor_params):
            field = PageField(max_value=PAGE_MAX if name in self.page_params else ID_MAX)
            try:
                self.pages[name] = field.clean(data.get(name))
            except forms.ValidationError as exc:
                errors[name] = exc.messages[0]
        return errors

    def read_filters(self, data: QueryDict | None = None) -> tuple[Any, Any]:
        """(form, filters) from `data` (the request's query string by default). filters is None
        when a value cannot be read, and the view's answer becomes a 400."""
        data = self.request.GET if data is None else data
        form = self.filter_form_class(data or None, **self.filter_form_kwargs())
        names = _field_names(form)
        repeated = single_values(data, [*names, *self.page_params, *self.cursor_params])
        errors = {**self.read_navigation(data), **repeated}
        valid = _is_valid(form)
        target = _form_of(form)
        for name, message in errors.items():
            if name in names:
                target.add_error(name, message)
            else:  # a link's own parameter (page, cursor, order): said above the form
                target.add_error(None, _("%(name)s in the address: %(error)s") % {"name": name, "error": message})
        filters = _filters_of(form) if valid and not errors else None
        self.filters_refused = filters is None
        return form, filters

    def page_number(self, name: str = "page") -> int:
        return getattr(self, "pages", {}).get(name) or 1

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().dispatch(request, *args, **kwargs)
        if self.filters_refused and response.status_code < 300:
            response.status_code = 400
        return response

    def refused_export(self, form, back: str) -> HttpResponse:
        """A GET export whose filters cannot be read: no file, the form with its errors to correct
        (sent to the list page `back`), 400."""
        self.filters_refused = True
        return render(self.request, "console/filters_refused.html",
                      {"form": _form_of(form), "back": back}, status=400)


def _form_of(form):
    return getattr(form, "form", form)  # a FilterSet's form


def _field_names(form) -> list[str]:
    return list(_form_of(form).fields)


def _is_valid(form) -> bool:
    if not form.is_bound:
        return True
    return form.is_valid()


def _filters_of(form):
    if isinstance(form, FilterForm):
        return form.filters()
    return form.qs  # a django-filter FilterSet: its filtered queryset


class AnyYesNoSelect(forms.NullBooleanSelect):
    """A yes/no filter: "Any", "Yes", "No". Django's own select calls the empty choice "Unknown"
    (未知), which reads as "the ones whose answer is unknown", and reads any other value as no
    filter at all; this one hands an unknown value to the field, which refuses it."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("", gettext_lazy("Any")), ("true", gettext_lazy("Yes")), ("false", gettext_lazy("No"))]

    def format_value(self, value):
        return {True: "true", False: "false", "true": "true", "false": "false"}.get(value, "")

    def value_from_datadict(self, data, files, name):
        return data.get(name)


class YesNoField(forms.NullBooleanField):
    """Any (empty), yes (`true`) or no (`false`); anything else is a form error, not "any"."""

    widget = AnyYesNoSelect
    default_error_messages = {"invalid": gettext_lazy("Choose any, yes or no.")}

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value in (True, "true", "True", "1"):
            return True
        if value in (False, "false", "False", "0"):
            return False
        raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
