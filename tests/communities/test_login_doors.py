"""The doors: repeated failed logins lock the account and, separately, the address (console and
admin alike) with a clear message, and a supervisor releases the lock; supervisors and
administrators must pass a TOTP second factor (enrol first, then a code at each login), others
may enrol and are then asked too."""

import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from communities.models import User
from tests.factories import UserFactory
from tests.otp import current_code, device_for

pytestmark = pytest.mark.django_db
PASSWORD = "pass-1234-word"


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # many logins here


def staff(username: str, role: str = User.Role.OPERATOR) -> User:
    user = UserFactory(username=username, role=role, is_staff=role in (User.Role.SUPERVISOR, User.Role.ADMINISTRATOR))
    user.set_password(PASSWORD)
    user.save()
    return user


def post_login(client, username, password, ip="10.1.1.1", url=None, **extra):
    return client.post(url or reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip,
                       **extra)


def test_an_account_is_locked_after_repeated_failures_from_any_address(client):
    staff("op1")
    for n in range(3):
        post_login(client, "op1", "wrong", ip=f"10.0.0.{n}")
    locked = post_login(client, "op1", PASSWORD, ip="10.0.0.99", HTTP_ACCEPT_LANGUAGE="en")
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_address_is_locked_whatever_account_it_tries(client):
    staff("op2")
    for n in range(3):
        post_login(client, f"guess{n}", "wrong", ip="10.9.9.9")
    assert post_login(client, "op2", PASSWORD, ip="10.9.9.9").status_code == 429
    assert post_login(client, "op2", PASSWORD, ip="10.9.9.10").status_code == 302  # another address: fine


def test_the_admin_login_is_counted_too(client):
    staff("adm", User.Role.ADMINISTRATOR)
    admin_login = reverse("admin:login")
    for _n in range(3):
        client.post(admin_login, {"username": "adm", "password": "wrong"}, REMOTE_ADDR="10.2.2.2")
    assert client.post(admin_login, {"username": "adm", "password": PASSWORD}, REMOTE_ADDR="10.3.3.3").status_code == 429


def test_a_supervisor_releases_a_locked_account(client):
    staff("op3")
    for _n in range(3):
        post_login(client, "op3", "wrong", ip="10.4.4.4")
    supervisor = staff("sup1", User.Role.SUPERVISOR)
    client.force_login(supervisor)
    page = client.get(reverse("lockouts")).content.decode()
    assert "op3" in page and "10.4.4.4" in page
    client.post(reverse("lockouts"), {"kind": "username", "value": "op3"})
    client.post(reverse("lockouts"), {"kind": "ip", "value": "10.4.4.4"})
    assert not AccessAttempt.objects.exists()
    client.logout()
    assert post_login(client, "op3", PASSWORD, ip="10.4.4.4").status_code == 302
    # an operator cannot open the lockout page
    client.force_login(staff("op4"))
    assert client.get(reverse("lockouts")).status_code == 403


def test_a_supervisor_must_enrol_then_verify_a_code_at_each_login(client):
    supervisor = staff("sup2", User.Role.SUPERVISOR)
    assert post_login(client, "sup2", PASSWORD).status_code == 302
    # the password alone opens nothing: the console sends them to the second step
    response = client.get(reverse("console-home"))
    assert response.status_code == 302 and response.url.startswith(reverse("otp-verify"))
    enrol = client.get(response.url, follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert enrol.redirect_chain[-1][0].startswith(reverse("otp-enrol"))
    assert "Supervisors and administrators must use a second factor" in enrol.content.decode()
    device = TOTPDevice.objects.get(user=supervisor, confirmed=False)
    wrong = client.post(reverse("otp-enrol"), {"token": "000000" if current_code(device) != "000000" else "111111"})
    assert wrong.status_code == 400 and not TOTPDevice.objects.filter(user=supervisor, confirmed=True).exists()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.save()
    client.post(reverse("otp-enrol"), {"token": current_code(device), "next": "/console/"})
    assert client.get(reverse("console-home")).status_code == 200
    # next login: password, then the code from the app
    client.logout()
    post_login(client, "sup2", PASSWORD)
    assert client.get(reverse("console-home")).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 302
    device.refresh_from_db()
    verified = client.post(reverse("otp-verify"), {"token": current_code(device, offset_steps=1), "next": "/console/"})
    assert verified.status_code == 302 and verified.url == "/console/"
    assert client.get(reverse("console-home")).status_code == 200


def test_an_unverified_administrator_gets_no_api_answer_by_session(client):
    staff("adm2", User.Role.ADMINISTRATOR)
    post_login(client, "adm2", PASSWORD)
    response = client.get("/api/v1/appeals/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 403 and "second factor" in response.json()["detail"]


def test_the_second_factor_is_optional_for_an_operator_until_enrolled(client):
    operator = staff("op5")
    post_login(client, "op5", PASSWORD)
    assert client.get(reverse("console-home")).status_code == 200
    device = device_for(operator)  # the operator chose to enrol
    client.logout()
    post_login(client, "op5", PASSWORD)
    assert client.get(reverse("console-home")).status_code == 302
    client.post(reverse("otp-verify"), {"token": current_code(device)})
    assert client.get(reverse("console-home")).status_code == 200
