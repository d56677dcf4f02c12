"""Forms on a bad day, in a real browser: a slow mobile line, a page left open too long, a session
that ended mid-form, a browser without JavaScript, a person who cannot see the error they made."""

import io
import re

import pytest
from PIL import Image

from communities.models import User
from healthkit.models import SmsMessage
from tests.factories import (
    CommunityFactory,
    CompoundAliasFactory,
    PopupCaseFactory,
    ResidentFactory,
)
from tests.factories.appeals import AppealFactory, image_bytes
from tests.sms_text import phone_text

pytestmark = [pytest.mark.journey, pytest.mark.django_db(transaction=True)]
PASSWORD = "pass-1234-word"


def phone_context(browser, base_url: str, language: str = "zh-hans", **options):
    """A 375x667 touch phone reading the site in `language`."""
    context = browser.new_context(viewport={"width": 375, "height": 667}, has_touch=True, is_mobile=True,
                                  locale="zh-CN" if language == "zh-hans" else "en-US", **options)
    context.add_cookies([{"name": "django_language", "value": language, "url": base_url}])
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def base_url(live_server, settings):
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    return live_server.url


def aria_descriptions_of_invalid_fields(page) -> list[tuple[str, str]]:
    """(field id, the text its aria-describedby names) for every field marked invalid; a missing
    id reads as an empty text."""
    return page.evaluate("""() => [...document.querySelectorAll("[aria-invalid='true']")].map(f =>
        [f.id, (f.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean)
              .map(id => { const e = document.getElementById(id); return e ? e.innerText.trim() : ''; }).join(' | ')])""")


def reach_the_evidence_step(page, base_url: str):
    community = CommunityFactory(name="望京西园社区")
    CompoundAliasFactory(community=community, name="望京西园三区")
    resident = ResidentFactory(name="李雷", community=community, phone="13800138000")
    PopupCaseFactory(resident=resident, popup_type=3)
    walk_to_the_evidence_step(page, base_url, resident)
    return resident


def walk_to_the_evidence_step(page, base_url: str, resident) -> None:
    page.goto(base_url + "/appeals/file/")
    page.fill("#id_name", "李雷")
    page.fill("#id_id_number", resident.reveal_id_number())
    page.fill("#id_phone", "13800138000")
    with page.expect_navigation():
        page.tap("main button[type=submit]")
    body = phone_text(SmsMessage.objects.filter(purpose="appeal_code").latest("id"))
    page.fill("#id_code", re.search(r"(?<!\d)(\d{6})(?!\d)", body).group(1))
    with page.expect_navigation():
        page.tap("main form button[type=submit]")
    page.check("input[name=popup]:not([value=unlisted])")
    page.check("input[name=category][value=correction]")
    with page.expect_navigation():
        page.tap("main button[type=submit]")
    with page.expect_navigation():
        page.tap("form:has(input[value=skip]) button")
    page.wait_for_selector("#id_files")


def test_errors_take_the_focus_and_are_named_by_the_field_in_error(browser, base_url):
    """Given a resident who sends the first step empty, then a picture the site cannot read;
    then each time the keyboard lands on the field in error, which names its message."""
    context = phone_context(browser, base_url, "en")
    page = context.new_page()
    page.goto(base_url + "/appeals/file/")
    with page.expect_navigation():
        page.tap("main button[type=submit]")
    assert page.evaluate("document.activeElement.id") == "id_name"
    described = aria_descriptions_of_invalid_fields(page)
    assert [field for field, _text in described] == ["id_name", "id_id_number", "id_phone"]
    assert all(text for _field, text in described), described

    page.fill("#id_name", "李雷")
    reach_the_evidence_step(page, base_url)
    page.set_input_files("#id_files", files=[{"name": "IMG_0001.HEIC", "mimeType": "image/heic",
                                             "buffer": b"\x00\x00\x00\x18ftypheic" + bytes(5000)}])
    page.tap("button[name=action][value=upload]")
    page.wait_for_selector("#id_files_error")
    assert page.evaluate("document.activeElement.id") == "id_files"
    assert aria_descriptions_of_invalid_fields(page) == [["id_files", page.inner_text("#id_files_error")]]
    assert "Picture 1" in page.inner_text("#id_files_error")  # by position: a file name may be personal
    context.close()


def test_a_slow_upload_shows_how_much_has_been_sent(browser, base_url, tmp_path):
    """Given a 2 MB screenshot on a line sending about 1 MB/s; when the resident uploads it;
    then the page shows a progress bar that moves before the thumbnail appears."""
    context = phone_context(browser, base_url)
    page = context.new_page()
    reach_the_evidence_step(page, base_url)
    shot = tmp_path / "screenshot.png"
    noise = Image.effect_noise((900, 800), 90).convert("RGB")
    out = io.BytesIO()
    noise.save(out, "PNG")
    shot.write_bytes(out.getvalue())
    assert shot.stat().st_size > 1_500_000
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 100,
                                                   "downloadThroughput": 1_000_000, "uploadThroughput": 800_000})
    page.set_input_files("#id_files", str(shot))
    page.tap("button[name=action][value=upload]")
    page.wait_for_function("() => { const p = document.querySelector('.upload-status progress');"
                           " return p && p.value > 0 && p.value < 100; }", timeout=15_000)
    assert page.locator(".upload-status[role=status]").is_visible()
    assert page.locator("button[name=action][value=upload]").is_disabled()  # one tap, one upload
    page.wait_for_selector(".thumbs figure", timeout=30_000)
    assert page.locator(".thumbs figure").count() == 1
    context.close()


def test_a_resident_whose_session_ended_mid_upload_is_told_to_start_again(browser, base_url, tmp_path):
    """Given a resident on the evidence step whose session has ended; when they send a picture;
    then the first step says the session expired (announced), not merely "confirm your phone"."""
    context = phone_context(browser, base_url)
    page = context.new_page()
    reach_the_evidence_step(page, base_url)
    context.clear_cookies(name="sessionid")
    shot = tmp_path / "shot.png"
    shot.write_bytes(image_bytes("PNG", (360, 720)))
    page.set_input_files("#id_files", str(shot))
    page.tap("button[name=action][value=upload]")
    page.wait_for_url("**/appeals/file/")
    assert page.locator("ul.messages [role=alert]").inner_text() == "会话已过期，请重新开始。"
    assert page.locator("#id_name").count() == 1
    context.close()


def test_a_stale_form_gets_a_page_in_the_readers_language_leading_back(browser, base_url):
    """Given a page whose CSRF cookie is gone (left open, cookies cleared); when its form is sent;
    then the answer is the site's page in the reader's language, leading back to the form."""
    for language, home in (("zh-hans", "首页"), ("en", "Home")):
        context = phone_context(browser, base_url, language)
        page = context.new_page()
        page.goto(base_url + "/appeals/status/")
        context.clear_cookies(name="csrftoken")
        page.fill("#id_reference", "261201-ABCDEFG")
        with page.expect_navigation():
            page.tap("main button[type=submit]")
        assert page.evaluate("document.documentElement.lang") == language
        assert page.locator("#csrf-failure").count() == 1
        assert page.locator("#csrf-failure a", has_text=home).count() == 1
        assert page.locator("#csrf-failure a.button").get_attribute("href").endswith("/appeals/status/")
        assert "CSRF" not in page.inner_text("body")
        context.close()


def test_a_form_sent_after_the_session_ended_says_so_and_comes_back_after_login(browser, base_url):
    """Given an operator on a ticket whose session has ended; when they log a call; then the login
    page says nothing was saved, and logging in leads back to the ticket (not a blank 405)."""
    User.objects.create_user("op", password=PASSWORD, role=User.Role.OPERATOR)
    appeal = AppealFactory()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "django_language", "value": "en", "url": base_url}])
    page = context.new_page()
    page.goto(f"{base_url}/console/appeals/{appeal.pk}/")
    page.fill("#id_username", "op")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    context.clear_cookies(name="sessionid")
    form = page.locator(f"form[action$='/{appeal.pk}/contact/']")
    form.locator("input[name=note]").fill("no answer, will call again")
    with page.expect_navigation():
        form.locator("button").click()
    assert "/accounts/login/" in page.url
    assert "nothing was saved" in page.locator("[role=alert]").inner_text()
    page.fill("#id_username", "op")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation() as navigation:
        page.click("main button[type=submit]")
    assert navigation.value.status == 200
    assert page.url == f"{base_url}/console/appeals/{appeal.pk}/"
    assert not appeal.contacts.exists()
    # what was typed is back in the same form, ready to send again: nothing to type twice
    form = page.locator(f"form[action$='/{appeal.pk}/contact/']")
    assert form.locator("input[name=note]").input_value() == "no answer, will call again"
    with page.expect_navigation():
        form.locator("button").click()
    assert list(appeal.contacts.values_list("note", flat=True)) == ["no answer, will call again"]
    context.close()


def test_a_description_typed_when_the_session_ended_comes_back_at_its_step(browser, base_url):
    """Given a resident who wrote a long description on the evidence step and whose session then
    ended; when they send it, confirm the phone again and come back to that step; then the
    description is in the box again (with JavaScript) or shown to copy (without)."""
    text = "11月20日起一直在北京朝阳区，从未离京；行程卡四项均为绿色，弹窗原因应为曾用手机号。"
    for javascript in (True, False):
        context = phone_context(browser, base_url, java_script_enabled=javascript)
        page = context.new_page()
        if javascript:
            resident = reach_the_evidence_step(page, base_url)
        else:
            walk_to_the_evidence_step(page, base_url, resident)
        page.fill("#id_description", text)
        context.clear_cookies(name="sessionid")
        with page.expect_navigation():
            page.tap("button[name=action][value=continue]")
        assert page.locator("ul.messages [role=alert]").inner_text() == "会话已过期，请重新开始。"
        walk_to_the_evidence_step(page, base_url, resident)
        if javascript:
            assert page.input_value("#id_description") == text and page.locator("#unsent-form").is_hidden()
        else:
            assert page.input_value("#id_description") == ""
            assert page.locator("#unsent-form textarea").input_value() == text
        context.close()


def test_the_language_switch_works_without_javascript_and_keeps_the_address(browser, base_url):
    """Given a phone browser with JavaScript off on a page with a query string; when the reader
    switches to English; then the same address is shown again, in English."""
    context = phone_context(browser, base_url, "zh-hans", java_script_enabled=False)
    page = context.new_page()
    page.goto(base_url + "/appeals/status/?from=sms")
    assert page.evaluate("document.documentElement.lang") == "zh-hans"
    page.select_option("select[name=language]", "en")
    with page.expect_navigation():
        page.click("header form[action$='/setlang/'] button")
    assert page.url == base_url + "/appeals/status/?from=sms"
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("h1").inner_text() == "Check an appeal"
    context.close()


def test_switching_the_language_keeps_what_was_typed(browser, base_url):
    """Given a resident who has written their description; when they switch the page to English;
    then the page comes back in English with the description still in the box."""
    context = phone_context(browser, base_url, "zh-hans")
    page = context.new_page()
    reach_the_evidence_step(page, base_url)
    page.fill("#id_description", "一直在北京，行程卡均为绿色。")
    with page.expect_navigation():
        page.select_option("header select[name=language]", "en")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.input_value("#id_description") == "一直在北京，行程卡均为绿色。"
    # and only once: a later visit to the page starts from what the server has
    page.reload()
    assert page.input_value("#id_description") == ""
    context.close()
