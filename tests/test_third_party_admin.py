"""The admin's pages of third-party apps read in Chinese too, and the second-factor devices'
secrets are never shown: django-axes ships no Simplified Chinese catalogue (the project's
catalogue carries its wording, healthkit/third_party_wording.py) and django-otp's admin marks
nothing for translation and shows each device's key and enrolment QR code by default."""

import pytest
from django.urls import reverse
from django.utils import translation
from django_otp.plugins.otp_totp.models import TOTPDevice

from communities.models import User
from healthkit.third_party_wording import AXES


@pytest.fixture
def administrator(db):
    return User.objects.create_superuser("root", "root@example.invalid", "pw-1234-5678", role="administrator")


def test_every_axes_string_has_a_chinese_translation():
    with translation.override("zh-hans"):
        missing = [text for text in AXES if translation.gettext(text) == text]
    assert not missing, missing


@pytest.mark.django_db
def test_lockout_lists_read_in_chinese(client, administrator):
    client.force_login(administrator)
    page = client.get(reverse("admin:axes_accessattempt_changelist"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert page.status_code == 200
    text = page.content.decode()
    assert "访问尝试" in text and "access attempts" not in text.lower()


@pytest.mark.django_db
def test_totp_device_admin_reads_in_chinese_and_never_shows_the_secret(client, administrator):
    device = TOTPDevice.objects.create(user=administrator, name="phone", confirmed=True)
    client.force_login(administrator)
    listing = client.get(reverse("admin:otp_totp_totpdevice_changelist"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert listing.status_code == 200
    assert "已确认" in listing.content.decode() and "Search by user" not in listing.content.decode()
    change = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]),
                        HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert change.status_code == 200
    text = change.content.decode()
    assert device.key not in text and device.config_url not in text
    for label in ("时间步长", "创建时间", "连续失败次数"):
        assert label in text, label
    for title in ("Identity", "Throttling", "Timestamps"):
        assert f">{title}<" not in text, title
    # the QR code and its page would let anyone holding an admin session copy the second factor
    assert client.get(reverse("admin:otp_totp_totpdevice_config", args=[device.pk])).status_code == 403
    assert client.get(reverse("admin:otp_totp_totpdevice_qrcode", args=[device.pk])).status_code == 403
