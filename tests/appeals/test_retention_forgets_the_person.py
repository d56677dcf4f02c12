"""Forget on schedule, end to end: a resident's whole story (phone appeal with a picture, call
notes, SMS, clearance link and confirmation, reveals with typed reasons, lift) is on record;
the clock moves past every retention period; the retention job runs; then no name, ID number,
phone, address or picture of that person is left in any text or JSON column of any table (the
access audit included, encrypted columns decrypted) nor in the media folder, while the
anonymous statistics remain. A second run changes nothing."""

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse

from appeals import retention
from appeals.clearance.models import ClearanceTask
from appeals.models import Appeal
from appeals.services import (
    appeal_assign,
    appeal_contact_log,
    appeal_evidence_add,
    appeal_file_by_phone,
    appeal_reveal,
    appeal_route,
)
from communities import pii
from communities.models import PersonalDataAccess, Resident, User
from communities.services import access_log
from healthkit import clock
from healthkit.models import PopupCase, SmsMessage
from tests.clearance.helpers import confirmation_post, token_in
from tests.factories import (
    CommunityFactory,
    PopupCaseFactory,
    ResidentFactory,
    UserFactory,
    make_id_number,
)
from tests.factories.appeals import image_bytes, upload
from tests.factories.clearance import WorkerFactory

pytestmark = pytest.mark.django_db

NAME = "欧阳娜娜"
PHONE = "13700001111"
CONTACT_PHONE = "13912345678"  # the one confirmed through the clearance link (confirmation_post)
ADDRESS = "望京西园三区5号楼1单元302"
LINK_ADDRESS = confirmation_post()["address"]


def _text_columns() -> list[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT table_name, column_name, data_type FROM information_schema.columns
            WHERE table_schema = current_schema()
              AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')""")
        return cursor.fetchall()


def _where_found(values: list[str]) -> list[str]:
    found = []
    with connection.cursor() as cursor:
        for table, column, _type in _text_columns():
            for value in values:
                # table and column names come from information_schema, not from input
                cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s',  # noqa: S608
                               ["%" + value.replace("%", r"\%") + "%"])
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column} holds {value!r}")
            # encrypted values (any column: *_encrypted, encrypted JSON fields), decrypted
            cursor.execute(f'SELECT "{column}"::text FROM "{table}" WHERE "{column}"::text LIKE %s',  # noqa: S608
                           ["gAAAAA%"])
            for (token,) in cursor.fetchall():
                clear = pii.decrypt(token)
                found += [f"{table}.{column} encrypts {v!r}" for v in values if v in clear]
    return found


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_after_the_retention_periods_nothing_of_the_person_remains(client, sms_outbox,
                                                                   django_capture_on_commit_callbacks):
    # given a resident with a popup 1 from an upstream match, who calls 12345
    id_number = make_id_number()
    community = CommunityFactory()
    resident = ResidentFactory(name=NAME, community=community, phone=PHONE,
                               id_encrypted=pii.encrypt(id_number), id_hash=pii.id_hash(id_number),
                               id_masked=pii.mask_id(id_number))
    popup = PopupCaseFactory(resident=resident, popup_type=1,
                             cause={"trigger": "upstream", "reason": f"手机号{PHONE}曾在外地使用"})
    operator = UserFactory(role=User.Role.OPERATOR)
    worker = WorkerFactory(communities=[community])
    appeal, _created = appeal_file_by_phone(
        actor=operator, name=NAME, id_number=id_number, phone=PHONE, category=Appeal.Category.OLD_PHONE,
        popup=popup, community=community, address_text=ADDRESS,
        description=f"{NAME}说手机号{PHONE}以前在外地用过", call_note=f"{NAME}来电，住{ADDRESS}")
    appeal_assign(appeal=appeal, assignee=operator, actor=operator)
    evidence = appeal_evidence_add(appeal=appeal, upload=upload(data=image_bytes(color=(200, 10, 10))),
                                   actor=operator)
    appeal_contact_log(appeal=appeal, actor=operator, direction="outbound", outcome="reached",
                       note=f"回拨{PHONE}，{NAME}本人接听")
    appeal_reveal(appeal=appeal, actor=operator, reason=f"核实{NAME}身份")
    access_log(actor=operator, resident=resident, action=PersonalDataAccess.Action.LOOKUP,
               context="test", reason=f"查{id_number}")
    client.force_login(operator)
    client.get(reverse("appeals:evidence-file", args=[evidence.pk]))  # an audited look at the picture
    picture_files = [Path(evidence.file.path), Path(evidence.thumbnail.path)]
    assert all(p.exists() for p in picture_files)

    # and the hotline routes it: the community's link SMS, the resident's confirmation, the lift
    with django_capture_on_commit_callbacks(execute=True):
        appeal_route(appeal=appeal, community=community, actor=operator, reason=f"{NAME}属本社区")
    task = ClearanceTask.objects.get(appeal=appeal)
    client.logout()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("clearance:link", args=[token_in(sms_outbox.outbox[0])]), confirmation_post())
    client.force_login(worker)
    client.post(reverse("clearance:task-action", args=[task.pk, "reveal"]), {"reason": f"电话联系{NAME}"})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("clearance:task-action", args=[task.pk, "accept"]), {"reason": f"{NAME}核实无风险"})
    client.logout()
    popup.refresh_from_db()
    appeal.refresh_from_db()
    assert popup.state == PopupCase.State.LIFTED and appeal.status == Appeal.Status.CLOSED
    assert SmsMessage.objects.count() >= 2

    person = [NAME, pii.mask_name(NAME), id_number, pii.mask_id(id_number), pii.id_hash(id_number),
              PHONE, pii.mask_phone(PHONE), pii.phone_hash(PHONE), CONTACT_PHONE, pii.mask_phone(CONTACT_PHONE),
              pii.phone_hash(CONTACT_PHONE), ADDRESS, LINK_ADDRESS]
    before = _where_found(person)
    assert before, "the story should have left the person's data on record"
    # including the encrypted clearance confirmation (the address typed through the link)
    assert any("confirmation encrypts" in line and LINK_ADDRESS in line for line in before), before

    # when the clock passes every retention period and the job runs
    longest = max(settings.RETENTION_EVIDENCE_DAYS, settings.RETENTION_APPEAL_DAYS, settings.RETENTION_CLEARANCE_DAYS,
                  settings.RETENTION_SMS_DAYS, settings.RETENTION_POPUP_DAYS, settings.RETENTION_RESIDENT_DAYS,
                  settings.AUDIT_REASON_RETENTION_DAYS)
    with clock.frozen_at(clock.now() + dt.timedelta(days=longest + 1)):
        done = retention.retention_forget_due()
        again = retention.retention_forget_due()

    # then nothing of the person is left anywhere, audit free text included, nor their picture
    assert done["residents"] == 1 and done["evidence"] == 1 and done["appeals"] >= 1
    assert _where_found(person) == []
    assert not any(p.exists() for p in picture_files)
    assert _files(Path(settings.MEDIA_ROOT)) == []
    # and the statistics stay: one closed appeal by category and outcome, a lifted popup, a task
    appeal.refresh_from_db()
    assert (appeal.category, appeal.status, appeal.outcome) == (Appeal.Category.OLD_PHONE, "closed", "lifted")
    assert PopupCase.objects.filter(popup_type=1, state=PopupCase.State.LIFTED, resident=resident).count() == 1
    assert ClearanceTask.objects.get(pk=task.pk).state == ClearanceTask.State.LIFTED
    assert Resident.objects.get(pk=resident.pk).community == community
    # the audit rows are all still there (who looked, at whom, when), only their typed reasons went
    assert PersonalDataAccess.objects.filter(resident=resident).count() >= 5
    # and a second run finds nothing more to do
    assert set(again.values()) == {0}
