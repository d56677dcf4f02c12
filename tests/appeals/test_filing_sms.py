"""Filing on every channel texts the filer at once: the reference, what happens next, the
expected time by category (the SLA), the status page address and the free-service warning."""

import pytest
from django.utils import translation

from appeals.models import Appeal
from appeals.services import appeal_file, appeal_file_by_phone, appeal_file_open311
from healthkit import clock
from healthkit.models import SmsMessage
from tests.factories import make_id_number
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db


def _sms(appeal: Appeal) -> SmsMessage:
    return SmsMessage.objects.get(idempotency_key=f"appeal:{appeal.pk}:filed")


def test_online_filing_sms_has_everything_the_resident_needs(settings, resident_with_popup):
    resident, popup = resident_with_popup
    appeal, folded = appeal_file(resident=resident, popup=popup, category="correction", contact_phone="13800138000")
    body = _sms(appeal).body
    assert not folded
    assert body.startswith(settings.SMS_SIGNATURE)
    assert appeal.reference in body
    assert "within 24 hours" in body  # the normal category's SLA
    assert settings.OFFICIAL_SITE_URL + "/appeals/status/" in body
    assert "nobody will ever ask you for money" in body
    assert _sms(appeal).phone_masked == "138****8000"


def test_an_emergency_is_promised_its_own_sla(resident_with_popup):
    resident, _popup = resident_with_popup
    appeal, _ = appeal_file(resident=resident, category="emergency_medical", contact_phone="13800138000")
    assert "within 2 hours" in _sms(appeal).body


def test_the_filing_sms_is_not_held_at_night(settings, resident_with_popup):
    settings.SMS_QUIET_HOURS_START, settings.SMS_QUIET_HOURS_END = 22, 7
    resident, popup = resident_with_popup
    with clock.frozen_at(cst(2022, 11, 20, 23, 30)):
        appeal, _ = appeal_file(resident=resident, popup=popup, category="correction", contact_phone="13800138000")
    assert _sms(appeal).not_before is None


def test_a_repeat_is_told_which_reference_to_follow(resident_with_popup):
    resident, popup = resident_with_popup
    appeal, _ = appeal_file(resident=resident, popup=popup, category="correction", contact_phone="13800138000")
    again, folded = appeal_file(resident=resident, popup=popup, category="correction", contact_phone="13800138000")
    assert folded and again.pk == appeal.pk
    repeat = SmsMessage.objects.get(idempotency_key=f"appeal:{appeal.pk}:repeat:1")
    assert appeal.reference in repeat.body and "added to your open appeal" in repeat.body


def test_phone_entry_texts_the_caller(operator, community):
    appeal, _ = appeal_file_by_phone(actor=operator, name="韩梅梅", id_number=make_id_number(), phone="13900001111",
                                     category="correction", popup_type_claimed=3, community=community,
                                     identity_acknowledged=True)  # an ID number nobody registered
    message = _sms(appeal)
    assert message.phone_masked == "139****1111" and appeal.reference in message.body


def test_open311_filing_texts_the_given_phone(community):
    appeal, _ = appeal_file_open311(client=None, name="王小明", id_number=make_id_number(), phone="13600009999",
                                    category="correction", popup_type_claimed=3, address_text="朝阳区望京西园三区")
    message = _sms(appeal)
    assert message.phone_masked == "136****9999" and appeal.reference in message.body


def test_online_filing_remembers_the_page_language(resident_with_popup):
    resident, popup = resident_with_popup
    with translation.override("en"):
        appeal, _ = appeal_file(resident=resident, popup=popup, category="correction", contact_phone="13800138000")
    assert appeal.language == "en"


def test_emergency_news_goes_to_the_codes_queue(resident_with_popup):
    from healthkit import queues

    resident, _popup = resident_with_popup
    appeal, _ = appeal_file(resident=resident, category="emergency_medical", contact_phone="13800138000")
    message = _sms(appeal)
    assert message.purpose == "emergency_appeal_filed" and queues.sms_queue(message.purpose) == queues.CODES
