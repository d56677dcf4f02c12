import pytest

from communities.models import User

pytestmark = [pytest.mark.journey, pytest.mark.django_db(transaction=True)]


def test_operator_logs_in_sees_chinese_console_and_switches_to_english(page, live_server):
    User.objects.create_user("op", password="pass-1234-word", role=User.Role.OPERATOR, first_name="陈")
    page.goto(live_server.url + "/console/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "op")
    page.fill("#id_password", "pass-1234-word")
    page.click("button[type=submit]")
    page.wait_for_url("**/console/")
    assert page.locator("select[name=language]").input_value() == "zh-hans"
    with page.expect_navigation():
        page.select_option("select[name=language]", "en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Open popups you can see" in page.content()
