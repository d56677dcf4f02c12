"""A console action the service refuses leads back to the page it was sent from, says why once in
the reader's language, and loses nothing typed (healthkit.unsent.action_refused).

Before, a refused ticket, task or risk-window action was answered at its POST address with the
reason three times (a message, the form's own error, the form again), and reloading that page
sent the action again.

The actions are found, not listed: every POST form carrying the version of the record the page
showed (`seen`) on every page of the role matrix, filled in from its own fields, is sent with a
stale version, which every service refuses."""

from __future__ import annotations

import re
from html import escape, unescape
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from django.utils import timezone, translation

from healthkit.concurrency import SEEN_FIELD, ChangedSinceSeen, check_seen
from tests.test_url_role_matrix import MATRIX, _url, client_for, world  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

ROLES = ("operator", "worker", "supervisor")
MARK = "typed-by-hand"


class _ActionForms(HTMLParser):
    """The POST forms of a page that carry `seen`, each as (action, {name: value})."""

    def __init__(self):
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._form: tuple[str, dict[str, str]] | None = None
        self._select: str | None = None
        self._text: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "form" and (attrs.get("method") or "").lower() == "post":
            self._form = (attrs.get("action") or "", {})
        elif self._form is None:
            return
        elif tag == "option" and self._select and attrs.get("value") and self._select not in self._form[1]:
            self._form[1][self._select] = attrs["value"]
        elif not name:
            return
        elif tag == "input":
            kind = attrs.get("type", "text")
            data = self._form[1]
            if kind == "hidden":
                data[name] = attrs.get("value") or ""
            elif kind in ("radio", "checkbox"):
                data.setdefault(name, attrs.get("value") or "on")
            elif kind not in ("submit", "button", "file"):
                maxlength = int(attrs.get("maxlength") or 100)
                data[name] = f"{MARK}-{name}"[:maxlength] if kind in ("text", "search") else attrs.get("value", "1")
        elif tag == "textarea":
            self._form[1][name] = f"{MARK}-{name}"
        elif tag == "select":
            self._select = name

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "form" and self._form is not None:
            if SEEN_FIELD in self._form[1]:
                self.forms.append(self._form)
            self._form = None


def _error_messages(html: str) -> list[str]:
    return [unescape(m) for m in re.findall(r'<li class="error"><span role="alert">(.*?)</span></li>', html, re.S)]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_refused_action_leads_back_says_why_once_and_keeps_what_was_typed(world, language):  # noqa: F811
    failures, tried, stale_refused = [], [], 0
    with translation.override(language):
        stale = _stale_message()
    for name, (key, expected) in MATRIX.items():
        role = next((r for r in ROLES if expected[r] == 200), None)
        if name == "admin:*" or role is None or key is None:
            continue
        client = client_for(role, world)
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = language
        page_url = _url(name, world, key, role)
        page = client.get(page_url)
        if "html" not in page.get("Content-Type", ""):
            continue
        parser = _ActionForms()
        parser.feed(page.content.decode())
        for action, data in parser.forms:
            action = action or page_url
            tried.append(action)
            data[SEEN_FIELD] = "stale-version"
            typed = [v for v in data.values() if v.startswith(MARK)]
            response = client.post(action, data)
            where = f"{role} {action}"
            if response.status_code != 302 or response["Location"].split("?")[0] != page_url:
                failures.append(f"{where}: {response.status_code} {response.get('Location')}, not back to {page_url}")
                continue
            html = client.get(response["Location"]).content.decode()
            errors = _error_messages(html)
            if len(errors) != 1:
                failures.append(f"{where}: {len(errors)} error messages")
                continue
            if html.count(escape(errors[0])) != 1:
                failures.append(f"{where}: the reason shown {html.count(escape(errors[0]))} times")
            if language == "zh-hans" and not re.search(r"[\u4e00-\u9fff]", errors[0]):
                failures.append(f"{where}: {errors[0]!r} is not in Chinese")
            stale_refused += errors[0] == stale
            for value in typed:
                if escape(value) not in html:
                    failures.append(f"{where}: lost what was typed ({value})")
            # a reload of the page sends nothing: it is a GET of the page itself
            again = client.get(response["Location"])
            if again.status_code != 200 or _error_messages(again.content.decode()):
                failures.append(f"{where}: the page again answered {again.status_code} or repeated the error")
    assert len(tried) >= 12, tried  # the ticket's, the task's and the risk window's actions
    assert not failures, "\n".join(failures)
    assert stale_refused >= 8  # most forms filled in well enough to reach their service


def _stale_message() -> str:
    try:
        check_seen(SimpleNamespace(updated_at=timezone.now()), "stale-version")
    except ChangedSinceSeen as exc:
        return str(exc.message)
    raise AssertionError("a stale version was not refused")
