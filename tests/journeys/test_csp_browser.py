"""In a real browser under the Content-Security-Policy: the API docs render from local files and
the language switcher (static JS, no inline handler) still works, with no policy violation."""

import pytest

pytestmark = [pytest.mark.journey, pytest.mark.django_db(transaction=True)]


def test_api_docs_and_language_switch_run_without_csp_violations(page, live_server):
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(live_server.url + "/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Health Kit back-office API" in page.inner_text(".swagger-ui .info .title")

    page.goto(live_server.url + "/appeals/")
    page.select_option("select[name=language]", "en")
    page.wait_for_load_state("load")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert violations == []
