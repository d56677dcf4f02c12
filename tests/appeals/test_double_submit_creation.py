"""A creation form sent twice at the same moment (a double click on "create", a double tap on
"submit"): one appeal, one call logged, one SMS; the second submission is told it did nothing
(healthkit.concurrency.once). A form refused the first time can be corrected and sent again."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from appeals.models import Appeal, AppealContact
from communities.models import User
from healthkit.models import SmsMessage
from tests.appeals.test_resident_filing import _code_from
from tests.concurrency import at_once, post_messages, signed_in
from tests.factories import (
    CommunityFactory,
    PopupCaseFactory,
    ResidentFactory,
    UserFactory,
    make_id_number,
)

pytestmark = pytest.mark.django_db(transaction=True)

ONCE = re.compile(r'name="once" value="([^"]+)"')
ALREADY = "This form was already sent"


def _phone_form(client: Client, number: str) -> dict:
    page = client.get(reverse("appeals:phone-entry")).content.decode()
    tokens = ONCE.findall(page)
    return {**({"once": tokens[0]} if tokens else {}), "name": "王芳", "id_number": number, "phone": "13900139000",
            "category": "correction", "popup_type_claimed": "3", "description": "来电称未去过外地",
            "call_outcome": "reached", "identity_acknowledged": "on"}


def test_phone_entry_sent_twice_at_once_files_one_appeal_and_one_call():
    number = make_id_number()
    resident = ResidentFactory(name="王芳", id_number=number, phone="13900139000")
    PopupCaseFactory(resident=resident, popup_type=3)
    client = signed_in(UserFactory(role=User.Role.OPERATOR))
    form = _phone_form(client, number)

    at_once(*(lambda: client.post(reverse("appeals:phone-entry"), form),) * 2)

    appeal = Appeal.objects.get()
    assert appeal.repeat_count == 0
    assert AppealContact.objects.count() == 1
    assert SmsMessage.objects.filter(purpose__contains="appeal_filed").count() == 1


def test_phone_entry_refused_once_can_be_sent_again_after_correcting_it():
    number = make_id_number()
    ResidentFactory(name="王芳", id_number=number, phone="13900139000")
    client = signed_in(UserFactory(role=User.Role.OPERATOR))
    form = _phone_form(client, number)

    refused = client.post(reverse("appeals:phone-entry"), {**form, "popup_type_claimed": "9"})
    assert refused.status_code == 400 and not Appeal.objects.exists()
    assert post_messages(client, reverse("appeals:phone-entry"), form)[-1].startswith("Appeal ")
    again = client.post(reverse("appeals:phone-entry"), form)

    assert again.status_code == 400 and ALREADY in again.content.decode()
    assert Appeal.objects.count() == 1 and AppealContact.objects.count() == 1


def test_resident_double_tap_on_submit_files_once(sms_outbox):
    community = CommunityFactory()
    resident = ResidentFactory(name="李雷", community=community, phone="13800138000")
    popup = PopupCaseFactory(resident=resident, popup_type=3)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.post(reverse("appeals:file-identify"), {"name": resident.name, "id_number": resident.reveal_id_number(),
                                                   "phone": "13800138000"})
    client.post(reverse("appeals:file-verify"), {"code": _code_from(sms_outbox)})
    client.post(reverse("appeals:file-popup"), {"popup": str(popup.pk), "category": "correction"})
    client.post(reverse("appeals:file-community"), {"action": "confirm", "community": str(community.pk)})
    client.post(reverse("appeals:file-details"), {"description": "一直在北京", "action": "continue"})
    assert client.get(reverse("appeals:file-check")).status_code == 200

    answers = at_once(*(lambda: client.post(reverse("appeals:file-check")),) * 2)

    assert sorted(a.status_code for a in answers) == [302, 400], answers
    refused = next(a for a in answers if a.status_code == 400)
    assert ALREADY in refused.content.decode()
    appeal = Appeal.objects.get()
    assert appeal.repeat_count == 0
    assert SmsMessage.objects.filter(purpose__contains="appeal_filed").count() == 1
