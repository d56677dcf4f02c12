"""No stored or displayed SMS text works as a credential once the message is sent: the outbox
row keeps the text with the one-time code and link tokens masked, the full text waits encrypted
only until the gateway has it, and rows written before this rule are masked by a migration."""

import re
from importlib import import_module

import pytest
from django.apps import apps
from django.urls import reverse

from appeals.clearance.services import clearance_link_issue
from appeals.services import appeal_request_evidence, identity_code_send, identity_code_verify
from communities import pii
from healthkit.errors import ApplicationError
from healthkit.models import SmsMessage
from healthkit.sms import sms_deliver
from tests.factories import make_id_number, make_phone
from tests.factories.clearance import ClearanceTaskFactory
from tests.sms_text import phone_text

pytestmark = pytest.mark.django_db
CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
LINK_PATH = re.compile(r"/(?:appeals/evidence-link|clearance/r)/[^/\s]+/")


def stored_texts(message: SmsMessage) -> list[str]:
    """Everything the database (and so a backup) holds about the message, as text."""
    message.refresh_from_db()
    return [str(getattr(message, f.attname)) for f in SmsMessage._meta.concrete_fields]


def test_a_sent_code_is_not_stored_and_no_stored_digits_pass_the_check(django_capture_on_commit_callbacks, sms_outbox):
    with django_capture_on_commit_callbacks(execute=True):
        challenge = identity_code_send(name="李雷", id_number=make_id_number(), phone=make_phone(), ip="10.0.0.1")
    message = SmsMessage.objects.get(purpose="appeal_code")
    assert message.state == SmsMessage.State.SENT and message.pending_encrypted == ""
    real = CODE.search(sms_outbox.outbox[-1].body).group(0)
    texts = stored_texts(message)
    assert not any(real in text for text in texts)
    for candidate in {c for text in texts for c in CODE.findall(text)}:
        with pytest.raises(ApplicationError):
            identity_code_verify(token=challenge.token, code=candidate)
    assert "******" in message.body and "never pay anyone" in message.body


def test_a_waiting_code_is_kept_encrypted_until_sent_then_wiped(sms_outbox):
    identity_code_send(name="李雷", id_number=make_id_number(), phone=make_phone(), ip="10.0.0.2")
    message = SmsMessage.objects.get(purpose="appeal_code")  # on_commit not run: still queued
    real = CODE.search(phone_text(message)).group(0)
    assert real not in message.body and real not in message.pending_encrypted
    sms_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert sms_outbox.outbox[-1].body.count(real) == 1 and message.pending_encrypted == ""


def test_given_up_messages_drop_their_live_text(sms_outbox):
    sms_outbox.fail_next = 100
    identity_code_send(name="李雷", id_number=make_id_number(), phone=make_phone(), ip="10.0.0.3")
    message = SmsMessage.objects.get()
    for _attempt in range(8):
        SmsMessage.objects.filter(pk=message.pk).update(next_attempt_at=message.created_at)
        sms_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.state == SmsMessage.State.DEAD and message.pending_encrypted == ""


def test_sent_links_in_the_outbox_and_the_admin_open_nothing(client, django_capture_on_commit_callbacks, sms_outbox,
                                                             resident_with_popup, operator, settings):
    from communities.models import User
    from tests.factories import UserFactory
    from tests.factories.appeals import AppealFactory

    resident, popup = resident_with_popup
    appeal = AppealFactory(resident=resident, popup=popup, popup_type_claimed=3)
    with django_capture_on_commit_callbacks(execute=True):
        appeal_request_evidence(appeal=appeal, actor=operator)
        clearance_link_issue(task=ClearanceTaskFactory(resident=resident, popup=popup))
    messages = list(SmsMessage.objects.order_by("pk"))
    assert len(messages) == 2 and all(m.state == SmsMessage.State.SENT for m in messages)
    admin = UserFactory(username="root", role=User.Role.ADMINISTRATOR, is_staff=True, is_superuser=True)
    client.force_login(admin)
    shown = "".join(client.get(reverse("admin:healthkit_smsmessage_change", args=[m.pk])).content.decode()
                    for m in messages)
    shown += client.get(reverse("admin:healthkit_smsmessage_changelist")).content.decode()
    stored = [text for m in messages for text in stored_texts(m)] + [shown]
    anonymous = client.__class__()
    # what the phone got works ...
    live = [LINK_PATH.search(sent.body).group(0) for sent in sms_outbox.outbox]
    assert len(live) == 2 and not any(path in text for path in live for text in stored)
    # ... and nothing stored or shown opens a page
    for path in {p for text in stored for p in LINK_PATH.findall(text)}:
        assert anonymous.get(path).status_code in (400, 404, 410), path
    assert anonymous.get(live[0]).status_code == 200


def test_the_migration_masks_rows_written_before_the_rule(settings):
    settings.OFFICIAL_SITE_URL = "https://12345.example.gov.cn"
    token = "AbCdEfGhIjKlMnOpQrStUvWxYz012345.sIgNaTuRe_-0123456789abcd"
    link_text = f"[12345] please confirm at https://12345.example.gov.cn/clearance/r/{token}/ (valid 72 h)"
    base = {"phone_encrypted": pii.encrypt(make_phone()), "phone_masked": "138****0000",
            "next_attempt_at": "2022-09-01T00:00:00Z"}
    sent_link = SmsMessage.objects.create(idempotency_key="m1", purpose="clearance_confirm", body=link_text,
                                          state="sent", **base)
    sent_code = SmsMessage.objects.create(idempotency_key="m2", purpose="appeal_code", state="delivered",
                                          body="[12345] Your code is 482913, valid 10 minutes.", **base)
    waiting = SmsMessage.objects.create(idempotency_key="m3", purpose="clearance_confirm", body=link_text,
                                        state="queued", **base)
    migration = import_module("healthkit.migrations.0010_sms_secrets_masked")
    from django.db import connection

    migration.forwards(apps, connection.schema_editor())
    for message in (sent_link, sent_code, waiting):
        message.refresh_from_db()
    assert sent_link.body == "[12345] please confirm at https://12345.example.gov.cn/clearance/r/******/ (valid 72 h)"
    assert sent_code.body == "[12345] Your code is ******, valid 10 minutes."
    assert token not in waiting.body and pii.decrypt(waiting.pending_encrypted) == link_text
