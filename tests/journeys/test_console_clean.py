"""The pages a resident and an operator open first leave the browser's console clean in both
languages: no script error, no failed request (the browser's own /favicon.ico request was a 404
on every first page; the site now names its icon)."""

import pytest

from communities.models import User

pytestmark = [pytest.mark.journey, pytest.mark.django_db(transaction=True)]
RESIDENT_PAGES = ["/", "/appeals/", "/appeals/file/", "/appeals/status/", "/accounts/login/"]


def test_first_pages_log_no_error_and_name_an_icon_that_loads(browser, live_server, settings):
    settings.SESSION_COOKIE_SECURE = False
    User.objects.create_user("op", password="pass-1234-word", role=User.Role.OPERATOR)
    problems: list[str] = []
    for language in ("zh-hans", "en"):
        context = browser.new_context(viewport={"width": 375, "height": 667}, has_touch=True)
        context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
        page = context.new_page()
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text} {m.location}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        for path in RESIDENT_PAGES:
            page.goto(live_server.url + path)
            page.wait_for_load_state("load")
            icon = page.evaluate("""async () => { const link = document.querySelector("link[rel~=icon]");
                if (!link) return null; const answer = await fetch(link.href);
                return [answer.status, answer.headers.get("content-type")]; }""")
            assert icon is not None and icon[0] == 200 and icon[1].startswith("image/"), (path, icon)
        page.fill("#id_username", "op")
        page.fill("#id_password", "pass-1234-word")
        with page.expect_navigation():
            page.click("main button[type=submit]")
        page.goto(live_server.url + "/console/appeals/")
        page.wait_for_load_state("load")
        context.close()
    assert problems == []
