"""An operator with a long queue, keyboard only (Tab, Enter, Space and typing): filter the queue,
open an appeal, close it, and land back on the same queue page with the same filters."""

from urllib.parse import parse_qs, urlsplit

import pytest

from appeals.models import Appeal
from communities.models import User
from tests.factories.appeals import AppealFactory

pytestmark = [pytest.mark.journey, pytest.mark.django_db(transaction=True)]
PASSWORD = "pass-1234-word"


def tab_to(page, selector: str, limit: int = 200) -> None:
    """Press Tab until the focused element matches `selector`; each stop must show its focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            outline = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
                return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 || s.boxShadow !== 'none'; }""")
            assert outline, f"{selector} has no visible focus"
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_operator_closes_an_appeal_by_keyboard_and_returns_to_the_same_queue_page(page, live_server):
    User.objects.create_user("op", password=PASSWORD, role=User.Role.OPERATOR)
    for _ in range(55):  # more than one page of 50
        AppealFactory(category=Appeal.Category.CORRECTION)
    AppealFactory(category=Appeal.Category.OTHER)  # filtered out
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(live_server.url + "/console/appeals/")
    tab_to(page, "#id_username")
    page.keyboard.type("op")
    tab_to(page, "#id_password")
    page.keyboard.type(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")

    # filters: open the <details> with the keyboard, choose a category, sort, apply
    tab_to(page, "details summary")
    page.keyboard.press("Enter")
    tab_to(page, "form.filters select[name=category]")
    page.select_option("form.filters select[name=category]", "correction")  # a select's choice by keyboard
    tab_to(page, "form.filters select[name=order]")
    page.select_option("form.filters select[name=order]", "oldest")
    tab_to(page, "form.filters button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    tab_to(page, "a.button[href*='after=']")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    queue_page = page.url
    assert parse_qs(urlsplit(queue_page).query).keys() >= {"category", "order", "after"}
    first_reference = page.locator("table.queue tbody tr a").first.inner_text()

    tab_to(page, "table.queue tbody tr a")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    appeal = Appeal.objects.get(reference=first_reference)
    tab_to(page, f"form[action*='/{appeal.pk}/assign-me/'] button")
    with page.expect_navigation():
        page.keyboard.press("Space")
    tab_to(page, f"form[action*='/{appeal.pk}/close/'] select[name=outcome]")
    tab_to(page, f"form[action*='/{appeal.pk}/close/'] [name=reason]")
    page.keyboard.type("核实无误，已解除")
    tab_to(page, f"form[action*='/{appeal.pk}/close/'] button")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    appeal.refresh_from_db()
    assert appeal.status == Appeal.Status.CLOSED
    assert page.url == queue_page  # same queue, filters, sort and page
    assert page.locator("ul.messages li").count() == 1
    assert first_reference not in page.locator("table.queue").inner_text()


def test_a_keyboard_reaches_the_content_and_the_next_page_in_a_few_tabs(page, live_server):
    # A full queue page is 50 rows with a link each: Next page was more than 50 Tabs away.
    User.objects.create_user("op", password=PASSWORD, role=User.Role.OPERATOR)
    for _ in range(55):
        AppealFactory(category=Appeal.Category.CORRECTION)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + "/console/appeals/")
    page.fill("#id_username", "op")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.press("#id_password", "Enter")

    # the first Tab stop on the page skips the header, and shows itself
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.matches('a.skip-link[href=\"#main\"]')")
    assert page.locator("a.skip-link[href='#main']").bounding_box()["width"] > 20
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    presses = 0
    for presses in range(1, 30):  # noqa: B007 - counted
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.matches('a.skip-link[href=\"#pages\"]')"):
            break
    else:
        raise AssertionError("no link skips the queue's rows")
    page.keyboard.press("Enter")
    tab_to(page, "a.button[href*='after=']", limit=3)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "after=" in page.url and presses < 20
