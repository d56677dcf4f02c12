"""Every page and API list a role may open answers a hostile query string without a 5xx: NUL and
control characters, invalid UTF-8 (a lone surrogate's bytes), numbers past any column, impossible
and implausible dates, full-width digits and JSON shapes, in every filter name the project uses.

Built on the URL x role matrix, so a new page is covered the day it gets its row."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.test_url_role_matrix import MATRIX, _url, client_for, world  # noqa: F401 - fixture

PARAMS = (
    "q", "district", "community", "popup_type", "type", "state", "status", "category", "channel",
    "priority", "origin", "kind", "date_from", "date_to", "from", "to", "since", "until", "at", "day",
    "cursor", "order", "page", "before", "after", "limit", "staff", "resident", "assigned", "queue",
    "escalated", "stranded", "test_missing", "closed_from", "closed_until", "grain", "lang", "format",
    "reference", "venue", "window", "id", "pk", "service_code", "start_date", "end_date",
)  # not api_key: Open311 refuses it in any query string before reading the rest (test_open311.py)
HOSTILE = (
    "%00",                      # NUL
    "a%01b%1Fc",                # control characters
    "%ED%A0%80",                # a lone surrogate, as UTF-8 bytes (invalid UTF-8)
    "%FF%FE",                   # plainly invalid UTF-8
    "99999999999999999999999",  # past bigint
    "-1",
    "0001-01-01T00:00:00%2B16:00",
    "2024-13-45",
    "%EF%BC%91%EF%BC%91%EF%BC%90%EF%BC%91%EF%BC%90%EF%BC%95",  # full-width digits
    "%7B%22a%22%3A%5B1%5D%7D",  # {"a":[1]}
)
ROLES = ("operator", "worker", "supervisor", "administrator", "venue_manager", "integration")


@pytest.mark.slow
def test_hostile_query_strings_never_answer_5xx(world):  # noqa: F811 - the matrix's fixture
    failures = []
    for role in ROLES:
        client = client_for(role, world)
        for name, (key, expected) in MATRIX.items():
            if name == "admin:*" or expected[role] != 200:
                continue
            url = _url(name, world, key, role)
            for value in HOSTILE:
                query = "&".join(f"{param}={value}" for param in PARAMS)
                status = client.get(url, QUERY_STRING=query).status_code
                if status >= 500:
                    failures.append(f"{role} {name} ?{value}: {status}")
    assert not failures, "\n".join(failures)



class _GetFormFields(HTMLParser):
    """The names of the fields of a page's GET forms (its filters)."""

    def __init__(self):
        super().__init__()
        self.names: list[str] = []
        self._in_get_form = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._in_get_form = (attrs.get("method") or "get").lower() == "get"
        elif (self._in_get_form and tag in ("input", "select", "textarea") and attrs.get("name")
              and attrs.get("type") not in ("submit", "button") and attrs["name"] not in self.names):
            self.names.append(attrs["name"])

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_get_form = False


# Each alone, so no other invalid field keeps the list from being read (a bad queue name made the
# queue page skip its date filters, which hid their overflow).
ALONE = (*HOSTILE, "9999-12-31", "0001-01-01", "10000-01-01", "9999-12-31T23:59", "0001-01-01T00:00")


@pytest.mark.slow
def test_each_filter_of_each_page_alone_with_hostile_values_never_answers_5xx(world):  # noqa: F811
    failures, tried = [], 0
    clients = {role: client_for(role, world) for role in ROLES}
    for name, (key, expected) in MATRIX.items():
        # each page once, as the first role that may open it (the hostile values above go to every role)
        role = next((r for r in ROLES if expected[r] == 200), None)
        if name != "admin:*" and role is not None:
            client = clients[role]
            url = _url(name, world, key, role)
            page = client.get(url)
            if "html" not in page.get("Content-Type", ""):
                continue
            fields = _GetFormFields()
            fields.feed(page.content.decode())
            for field in fields.names:
                for value in ALONE:
                    tried += 1
                    status = client.get(url, QUERY_STRING=f"{field}={value}").status_code
                    if status >= 500:
                        failures.append(f"{role} {name} ?{field}={value}: {status}")
    assert tried > 300  # the filter forms were found
    assert not failures, "\n".join(failures)


# Typed into a filter box: long, right-to-left and zero-width text, emoji, a formula, a NUL.
TYPED = ("x" * 5000, "\u202egnp.exe", "\u200b\u200d", "🦠🏥", "=HYPERLINK(\"http://evil.example\")", "a\x00b",
         "<script>alert(1)</script>", "' OR 1=1 --")


def test_what_is_typed_into_a_filter_is_shown_back_never_a_5xx(world):  # noqa: F811
    """Read or refused, a hostile value typed into a text filter stays in its box (escaped) for
    the person to correct, and the page answers 200 or 400, never a 5xx."""
    from django import forms
    from django.test import RequestFactory
    from django.utils.html import escape

    from healthkit.inputs import clean_query_string
    from tests.test_filter_refusal import _filtered_views, _posted

    failures, tried = [], 0
    for name, view_class in sorted(_filtered_views().items()):
        if _posted(view_class):
            continue
        key, expected = MATRIX[name]
        role = next(r for r in ("supervisor", "administrator", "operator", "worker", "venue_manager")
                    if expected[r] == 200)
        client = client_for(role, world)
        url = _url(name, world, key, role)
        view = view_class()
        view.request = RequestFactory().get(url)
        view.request.user = world.users[role]
        form = view_class.filter_form_class(None, **view.filter_form_kwargs())
        fields = getattr(form, "form", form).fields
        for field in [n for n, f in fields.items() if type(f) is not forms.ChoiceField
                      and isinstance(f, forms.CharField)]:
            for value in TYPED:
                tried += 1
                response = client.get(url, {field: value})
                if "html" not in response.get("Content-Type", ""):
                    continue  # an export: the form comes back on its refusal only
                html = response.content.decode()
                shown = clean_query_string(value)
                if response.status_code not in (200, 400):
                    failures.append(f"{name} {field}={value[:20]!r}: {response.status_code}")
                elif shown and escape(shown) not in html:
                    failures.append(f"{name} {field}={value[:20]!r}: what was typed is gone")
    assert tried >= 40
    assert not failures, "\n".join(failures)
