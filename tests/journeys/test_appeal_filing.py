"""A resident files a popup appeal on a phone-sized screen, from the code SMS to the status page."""

import re

import pytest

from appeals.models import Appeal
from healthkit.models import SmsMessage
from tests.factories import (
    CommunityFactory,
    CompoundAliasFactory,
    PopupCaseFactory,
    ResidentFactory,
)
from tests.factories.appeals import image_bytes
from tests.sms_text import phone_text

pytestmark = [pytest.mark.journey, pytest.mark.django_db(transaction=True)]


def test_resident_files_an_appeal_with_a_screenshot_and_checks_its_status(page, live_server, tmp_path):
    community = CommunityFactory(name="望京西园社区")
    CompoundAliasFactory(community=community, name="望京西园三区")
    resident = ResidentFactory(name="李雷", community=community, phone="13800138000")
    PopupCaseFactory(resident=resident, popup_type=3)
    id_number = resident.reveal_id_number()
    shot = tmp_path / "popup.png"
    shot.write_bytes(image_bytes("PNG", (360, 720)))

    page.goto(live_server.url + "/appeals/")
    page.click("a[href='/appeals/file/']")
    page.fill("#id_name", "李雷")
    page.fill("#id_id_number", id_number)
    page.fill("#id_phone", "13800138000")
    page.click("button[type=submit]")
    page.wait_for_url("**/appeals/file/code/")
    body = phone_text(SmsMessage.objects.filter(purpose="appeal_code").latest("id"))
    page.fill("#id_code", re.search(r"(?<!\d)(\d{6})(?!\d)", body).group(1))
    page.click("button[type=submit]")
    page.wait_for_url("**/appeals/file/popup/")

    page.check("input[name=popup]:not([value=unlisted])")
    page.check("input[name=category][value=correction]")
    page.click("button[type=submit]")
    page.wait_for_url("**/appeals/file/community/")
    page.fill("#id_address", "朝阳区望京西园三区5号楼")
    with page.expect_navigation():
        page.click("button[name=action][value=find]")
    assert "望京西园社区" in page.content()
    page.click("form:has(input[value=confirm]) button[type=submit]")
    page.wait_for_url("**/appeals/file/details/")

    page.fill("#id_description", "一直在北京，行程卡均为绿色。")
    page.set_input_files("#id_files", str(shot))
    page.click("button[name=action][value=upload]")  # sent in the background, with its progress shown
    page.wait_for_selector("button[name=remove]")
    assert page.locator("button[name=remove]").count() == 1
    page.click("button[name=action][value=continue]")
    page.wait_for_url("**/appeals/file/check/")
    page.click("form button[type=submit]")
    page.wait_for_url("**/appeals/file/done/")

    appeal = Appeal.objects.get()
    assert page.locator("#reference").inner_text() == appeal.reference
    assert appeal.evidence.count() == 1 and id_number not in page.url

    page.goto(live_server.url + "/appeals/status/")
    page.fill("#id_reference", appeal.reference)
    page.fill("#id_id_number", id_number)
    page.fill("#id_phone", "13800138000")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.locator("#status").count() == 1 and appeal.reference in page.locator("h1").inner_text()
    assert page.url.endswith("/appeals/status/")  # looked up by POST: nothing personal in the URL
