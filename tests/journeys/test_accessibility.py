"""Every page of every role, in both languages, through axe-core in a real browser.

Each role (a resident, an operator, a community worker, a supervisor past the second factor, a
venue manager) starts at "/" and "/console/" and follows same-site links; a page shape (digits
replaced) is checked once per language by the first role that reaches it, plus the pages a
reader meets on a bad day (a form with errors, a refused login, 404, a stale form's CSRF refusal). Fails on
axe's serious or critical violations (WCAG 2 A/AA), on an <html lang> that is not the page's
language, and on an aria-describedby naming an element that is not there.

axe-core's axe.min.js comes with the dev dependency axe-playwright-python (only that file is
used); $AXE_CORE_JS names another build (`npm install axe-core`) to try a newer one.
"""

import os
import re
from importlib import resources
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from django.conf import settings as django_settings
from django.test import Client

from communities.models import User
from tests.factories import PopupCaseFactory, ResidentFactory
from tests.factories.appeals import AppealFactory, upload
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory
from tests.factories.venues import VenueFactory

pytestmark = [pytest.mark.journey, pytest.mark.django_db(transaction=True)]
PASSWORD = "pass-1234-word"
LANGUAGES = ("zh-hans", "en")
SKIP = ("/accounts/logout/", "/i18n/", "/static/", "/admin/", "/api/", "/open311/")
FILES = re.compile(r"\.(?:csv|png|svg|pdf|json|xml)$|/evidence/\d+/(?:thumb/)?$|/thumb/$")
MAX_PAGES_PER_ROLE = 25
START = ("/", "/console/", "/appeals/", "/appeals/status/")
CHECK = """async () => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
                                          resultTypes: ['violations']});
  const serious = result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => v.id + ': ' + v.nodes.slice(0, 2).map(n => n.target.join(' ')).join(', '));
  const dangling = [...document.querySelectorAll('[aria-describedby]')].flatMap(e =>
    e.getAttribute('aria-describedby').split(/\\s+/).filter(id => id && !document.getElementById(id))
     .map(id => 'aria-describedby names a missing #' + id));
  return {lang: document.documentElement.lang, problems: serious.concat(dangling)};
}"""


def axe_source() -> str:
    if os.environ.get("AXE_CORE_JS"):
        return Path(os.environ["AXE_CORE_JS"]).read_text(encoding="utf-8")
    return (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


def shape(path: str) -> str:
    return re.sub(r"\d+", "<n>", path.split("?")[0])


def world() -> dict[str, User]:
    """One of each role with something to look at in their own scope."""
    from appeals.services import evidence_store

    users = {
        "operator": User.objects.create_user("op", password=PASSWORD, role=User.Role.OPERATOR),
        "supervisor": User.objects.create_user("sup", password=PASSWORD, role=User.Role.SUPERVISOR, is_staff=True),
        "venue": User.objects.create_user("ven", password=PASSWORD, role=User.Role.VENUE_MANAGER),
    }
    routed = RoutedAppealFactory()
    users["worker"] = WorkerFactory(username="wk", communities=[routed.routed_community])
    ClearanceTaskFactory(resident=routed.resident, popup=routed.popup, community=routed.routed_community)
    resident = ResidentFactory()
    appeal = AppealFactory(resident=resident, popup=PopupCaseFactory(resident=resident))
    evidence_store(upload=upload(), appeal=appeal)
    VenueFactory(managers=[users["venue"]], community=routed.routed_community)
    return users


def log_in(context, base_url: str, user: User) -> None:
    """The user's session (past the second factor: tests/conftest.py) as the browser's cookie; the
    login pages themselves are checked as the resident sees them, and journeys test the doors."""
    client = Client()
    client.force_login(user)
    context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                          "url": base_url}])


def test_every_page_of_every_role_passes_axe_in_both_languages(browser, live_server, settings):
    axe = axe_source()
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    users = world()
    base = live_server.url
    problems: dict[str, list[str]] = {}
    checked: dict[str, set[str]] = {language: set() for language in LANGUAGES}

    def check(page, language: str, label: str) -> None:
        page.add_script_tag(content=axe)
        found = page.evaluate(CHECK)
        wrong = [f"<html lang={found['lang']}>"] if found["lang"] != language else []
        if found["problems"] or wrong:
            problems[f"{language} {label}"] = wrong + found["problems"]

    for language in LANGUAGES:
        for role in ["resident", *users]:
            context = browser.new_context(bypass_csp=True, viewport={"width": 1280, "height": 900})
            context.add_cookies([{"name": "django_language", "value": language, "url": base}])
            page = context.new_page()
            page.set_default_timeout(15_000)
            if role == "resident":
                # the pages a resident meets on a bad day
                page.goto(base + "/appeals/file/")
                with page.expect_navigation():
                    page.click("main button[type=submit]")
                check(page, language, "/appeals/file/ (errors)")
                page.goto(base + "/accounts/login/")
                page.fill("#id_username", "nobody")
                page.fill("#id_password", "not-the-password")
                with page.expect_navigation():
                    page.click("main button[type=submit]")
                check(page, language, "/accounts/login/ (refused)")
                page.goto(base + "/no-such-page/")
                check(page, language, "404")
                page.goto(base + "/appeals/status/")
                context.clear_cookies(name="csrftoken")
                with page.expect_navigation():
                    page.click("main button[type=submit]")
                check(page, language, "CSRF refusal")
            else:
                log_in(context, base, users[role])
            queue, seen, pages = list(START), set(), 0
            while queue and pages < MAX_PAGES_PER_ROLE:
                path = queue.pop(0)
                new = shape(path) not in checked[language]
                if path in seen or not (new or path in START):
                    continue
                seen.add(path)
                response = page.goto(base + path)
                if response is None or response.status >= 400 or urlsplit(page.url).path.startswith("/accounts/login"):
                    continue
                if new:
                    checked[language].add(shape(path))
                    pages += 1
                    check(page, language, f"{shape(path)} ({role})")
                for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))"):
                    target = urlsplit(urljoin(base + path, href))
                    if target.netloc != urlsplit(base).netloc or target.path.startswith(SKIP) or FILES.search(target.path) \
                            or "format=" in target.query:  # exports
                        continue
                    queue.append(target.path + (f"?{target.query}" if target.query else ""))
            context.close()

    assert len(checked["en"]) >= 15 and checked["en"] == checked["zh-hans"], checked
    assert not problems, "\n".join(f"{page}: {found}" for page, found in sorted(problems.items()))
