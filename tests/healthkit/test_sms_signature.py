"""Every resident SMS: the configured signature, the reference, the footer, the resident's language,
and one SMS per change (the same key never queues twice)."""

import pytest
from django.utils.translation import gettext as _

from healthkit import notify
from healthkit.models import SmsMessage

pytestmark = pytest.mark.django_db


def test_signature_reference_and_footer(settings):
    settings.SMS_SIGNATURE = "【北京12345】"
    message = notify.resident_sms(phone="13800138000", key="k1", purpose="test", reference="221120-ABCDEFG",
                                  compose=lambda: "Your appeal moved.", language="en")
    assert message.body.startswith("【北京12345】Your appeal moved.")
    assert "Reference: 221120-ABCDEFG." in message.body
    assert settings.OFFICIAL_SITE_URL in message.body and "free" in message.body


def test_text_is_composed_in_the_resident_language_not_the_active_one():
    from django.utils import translation

    seen = []
    with translation.override("en"):
        notify.resident_sms(phone="13800138000", key="k2", purpose="test", language="zh-hans",
                            compose=lambda: seen.append(translation.get_language()) or _("Reference: %(ref)s.") % {
                                "ref": "x"})
    assert seen == ["zh-hans"]


def test_same_change_never_queues_twice():
    for _attempt in range(3):
        notify.resident_sms(phone="13800138000", key="appeal:1:closed", purpose="test", compose=lambda: "closed")
    assert SmsMessage.objects.filter(idempotency_key="appeal:1:closed").count() == 1


def test_no_phone_no_sms():
    assert notify.resident_sms(phone=None, key="k3", purpose="test", compose=lambda: "x") is None
    assert not SmsMessage.objects.exists()
