"""A filter value a page cannot read lists, counts and exports nothing, says why next to the field
in the reader's language, and answers 400, on every filtered page and export.

Before, the popup list, the dashboard and its figures export read an unreadable filter as "no
filter" (every open popup, the last 30 days), and the popup export then wrote every popup in the
exporter's scope to a file; an unknown risk-window state listed every window; a page number or a
sort order that was not one showed the first page in the default order.

The pages are found, not listed: every URL whose view reads filters is a
`healthkit.filtering.FilteredView` (walked from the URLconf), and every page of the role matrix
that shows a GET form must be one. Each field of each one's filter form, and each page number or
cursor it reads, gets a value it cannot read."""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser

import pytest
from django import forms
from django.http import QueryDict
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import translation

from communities.models import PersonalDataAccess
from healthkit.filtering import FilteredView
from tests.test_query_string_fuzz import _GetFormFields
from tests.test_url_role_matrix import MATRIX, _url, client_for, world  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

ROLES = ("supervisor", "administrator", "operator", "worker", "venue_manager")


def _filtered_views() -> dict[str, type]:
    """URL name → view class, for every URL whose view reads filters."""
    found = {}

    def walk(resolver, namespace=""):
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                walk(entry, f"{namespace}{entry.namespace}:" if entry.namespace else namespace)
            elif isinstance(entry, URLPattern):
                view = getattr(entry.callback, "view_class", None)
                if view is not None and issubclass(view, FilteredView):
                    found[namespace + entry.name] = view
    walk(get_resolver())
    return found


def _unreadable(field: forms.Field) -> list[str]:
    """Values this field cannot read (none for a checkbox: any value reads as ticked)."""
    if isinstance(field, forms.BooleanField):
        return []
    if isinstance(field, forms.NullBooleanField):
        return ["maybe"]
    if isinstance(field, forms.ModelChoiceField):
        return ["999999999", "abc"]
    if isinstance(field, forms.ChoiceField):
        return ["no-such-choice", "9" * 30]
    if isinstance(field, forms.DateTimeField):
        return ["2024-13-45T25:00", "0001-01-01T00:00"]
    if isinstance(field, forms.DateField):
        return ["2024-13-45", "9999-12-31"]
    if isinstance(field, forms.CharField):
        assert field.max_length, "every text filter has a maximum length (a 10,000-character search is no search)"
        return ["x" * (field.max_length + 1)]
    raise AssertionError(f"no unreadable value known for {type(field).__name__}")


NAVIGATION = ("abc", "0", "-1", "²", "99999999999999999999999")


class _Rows(HTMLParser):
    """Rows of data in a page's tables: a <tbody> row with more than one cell (the "nothing
    matches" row is one cell)."""

    def __init__(self):
        super().__init__()
        self.rows, self._cells, self._in_body = 0, 0, False

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._cells = 0
        elif tag in ("td", "th") and self._in_body:
            self._cells += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "tr" and self._in_body and self._cells > 1:
            self.rows += 1


def _data_rows(html: str) -> int:
    parser = _Rows()
    parser.feed(html)
    return parser.rows


def _role(name: str) -> str:
    expected = MATRIX[name][1]
    return next(r for r in ROLES if expected[r] in (200, 405))


def _posted(view: type) -> bool:
    """An export of personal data: POSTed with a reason, the list's filters as `query`."""
    return bool(getattr(view, "back", ""))


def _errors_expected(view_class, user, url: str, query: QueryDict, language: str) -> list[str]:
    """The messages the view's own reading of `query` gives, in `language`."""
    with translation.override(language):
        view = view_class()
        view.request = RequestFactory().get(url)
        view.request.user = user
        form, filters = view.read_filters(query)
        assert filters is None, f"{url}?{query.urlencode()} was read"
        target = getattr(form, "form", form)
        return [str(m) for errors in target.errors.values() for m in errors]


def _cases(view_class, user, url):
    view = view_class()
    view.request = RequestFactory().get(url)
    view.request.user = user
    form = view_class.filter_form_class(None, **view.filter_form_kwargs())
    fields = getattr(form, "form", form).fields
    for name, field in fields.items():
        for value in _unreadable(field):
            yield name, [value]
    for name in (*view_class.page_params, *view_class.cursor_params):
        for value in NAVIGATION:
            yield name, [value]
    # the same filter twice: which one was meant?
    name = next(iter(fields))
    yield name, ["", ""]


def test_every_page_with_a_get_form_reads_its_filters_through_the_boundary(world):  # noqa: F811
    filtered = _filtered_views()
    missing = []
    for name, (key, expected) in MATRIX.items():
        role = next((r for r in ROLES if expected[r] == 200), None)
        if name == "admin:*" or role is None:
            continue
        page = client_for(role, world).get(_url(name, world, key, role))
        if "html" not in page.get("Content-Type", ""):
            continue
        fields = _GetFormFields()
        fields.feed(page.content.decode())
        if fields.names and name not in filtered:
            missing.append(f"{name}: GET form {fields.names}")
    assert not missing, "pages reading filters outside healthkit.filtering:\n" + "\n".join(missing)
    # the pages and the exports: lists, dashboard, register, risk windows and their downloads
    assert {"console-popups", "appeals:queue", "clearance:worklist", "clearance:worklist-csv", "oversight:dashboard",
            "oversight:export-summary", "oversight:export-appeals", "oversight:export-tasks",
            "oversight:export-popups", "venues:venue-list", "venues:venue-register",
            "venues:venue-register-export", "venues:window-list"} <= set(filtered)


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_an_unreadable_filter_lists_and_exports_nothing_says_why_and_answers_400(world, language):  # noqa: F811
    failures, tried = [], 0
    for name, view_class in sorted(_filtered_views().items()):
        key, _expected = MATRIX[name]
        role = _role(name)
        user = world.users[role]
        client = client_for(role, world)
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = language
        url = _url(name, world, key, role)
        posted = _posted(view_class)
        if not posted:
            baseline = client.get(url)
            assert baseline.status_code == 200, f"{name} without filters: {baseline.status_code}"
        for field, values in _cases(view_class, user, url):
            tried += 1
            query = QueryDict(mutable=True)
            query.setlist(field, values)
            where = f"{role} {name} ?{query.urlencode()[:80]}"
            if posted:
                exports = PersonalDataAccess.objects.filter(action=PersonalDataAccess.Action.EXPORT).count()
                response = client.post(url, {"reason": "weekly check", "format": "csv", "query": query.urlencode()})
                if response.status_code != 302 or response.get("Content-Disposition"):
                    failures.append(f"{where}: exported ({response.status_code})")
                elif PersonalDataAccess.objects.filter(action=PersonalDataAccess.Action.EXPORT).count() != exports:
                    failures.append(f"{where}: an export was recorded")
                else:  # back to the list, which shows the errors
                    response = client.get(response["Location"])
                    url_shown = response.wsgi_request.path
                    view_shown = _filtered_views().get(response.resolver_match.view_name)
                    if response.status_code != 400 or view_shown is None:
                        failures.append(f"{where}: the list it led back to answered {response.status_code}")
                        continue
                    html = response.content.decode()
                    for message in _errors_expected(view_shown, user, url_shown, query, language):
                        if escape(message) not in html:
                            failures.append(f"{where}: list does not say {message!r}")
                continue
            response = client.get(url, query)
            if response.status_code != 400:
                failures.append(f"{where}: {response.status_code}, not 400")
                continue
            if response.get("Content-Disposition") or "html" not in response.get("Content-Type", ""):
                failures.append(f"{where}: a file, not the form to correct")
                continue
            html = response.content.decode()
            if _data_rows(html):
                failures.append(f"{where}: {_data_rows(html)} rows listed")
            if 'id="filter-invalid"' not in html:
                failures.append(f"{where}: no word that nothing is listed")
            for message in _errors_expected(view_class, user, url, query, language):
                if escape(message) not in html:
                    failures.append(f"{where}: does not say {message!r}")
    assert tried > 150
    assert not failures, "\n".join(failures)


def test_a_popup_export_with_an_unreadable_filter_writes_no_popup(world, client):  # noqa: F811
    # given a supervisor who sees the world's open popup
    client.force_login(world.users["supervisor"])
    assert client.get(reverse("console-popups")).context["rows"]
    # when the popup list's export is asked for with a date that is no date
    response = client.post(reverse("oversight:export-popups"),
                           {"reason": "weekly check", "format": "csv", "query": "raised_after=2022-02-30"})
    # then no file: back to the list, which lists nothing and says why
    assert response.status_code == 302 and response["Location"] == "/console/popups/?raised_after=2022-02-30"
    page = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 400 and page.context["rows"] == []
    assert "Enter a valid date." in page.content.decode()
    assert not PersonalDataAccess.objects.filter(action=PersonalDataAccess.Action.EXPORT).exists()
