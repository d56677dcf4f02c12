"""A supervisor's first login in a browser: password, then enrolment of an authenticator app
(key shown on the page), then the console; the next login asks for the app's code."""

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from communities.models import User
from tests.otp import current_code

pytestmark = [pytest.mark.journey, pytest.mark.django_db(transaction=True)]


def login(page, live_server):
    page.goto(live_server.url + "/console/")
    page.fill("#id_username", "sup")
    page.fill("#id_password", "pass-1234-word")
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_supervisor_enrols_then_verifies_at_the_next_login(page, live_server):
    user = User.objects.create_user("sup", password="pass-1234-word", role=User.Role.SUPERVISOR, is_staff=True)
    login(page, live_server)
    page.wait_for_selector("#otp-enrol")
    assert page.locator("#otp-qr").get_attribute("src").startswith("data:image/svg+xml")
    assert page.inner_text("#otp-key").strip()
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    page.fill("#id_token", current_code(device))
    with page.expect_navigation():
        page.click("#otp-enrol button[type=submit]")
    page.wait_for_url("**/console/")

    with page.expect_navigation():
        page.click("header form[action$='/accounts/logout/'] button")
    login(page, live_server)
    page.wait_for_selector("#otp-verify")
    device.refresh_from_db()
    page.fill("#id_token", current_code(device, offset_steps=1))
    with page.expect_navigation():
        page.click("#otp-verify button[type=submit]")
    page.wait_for_url("**/console/")
    assert "sup" in page.inner_text("header")
