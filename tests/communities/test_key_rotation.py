"""rotate_pii_keys: every personal-data column (the clearance confirmation and waiting SMS
included) and the residents' session drafts move to the new key; a row the site changes during
the rotation is not reverted; a code sealed under a dropped key is "expired", never a 500; and
the keyed-hash key can be rotated with `--rehash` (the documented procedure)."""

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.db import connection

from appeals.services import identity_code_send, identity_code_verify
from communities import pii
from communities.models import Resident, ResidentPhone
from communities.selectors import resident_by_id_number, residents_by_phone
from communities.services import resident_create, rotate_personal_data_keys
from healthkit.errors import ApplicationError
from healthkit.models import SmsMessage
from tests.factories import CommunityFactory, make_id_number, make_phone
from tests.factories.appeals import AppealFactory
from tests.factories.clearance import ClearanceTaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def keys(settings):
    old = settings.PII_ENCRYPTION_KEYS[0]
    new = Fernet.generate_key().decode()

    class Keys:
        def start_rotation(self):
            settings.PII_ENCRYPTION_KEYS = [new, old]

        def drop_old(self):
            settings.PII_ENCRYPTION_KEYS = [new]

    return Keys()


def raw(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])  # noqa: S608 - test names
        return cursor.fetchone()[0]


def test_every_encrypted_column_and_session_draft_moves_to_the_new_key(keys):
    number, phone = make_id_number(), make_phone()
    resident = resident_create(name="钱七", id_number=number, phones=[phone], community=CommunityFactory())
    task = ClearanceTaskFactory(resident=resident, confirmation={"address": "7号楼302"})
    identity_code_send(name="钱七", id_number=number, phone=phone, ip="10.0.0.1")  # waiting SMS
    session = SessionStore()
    session["appeal_draft"] = {"resident_id": resident.pk, "phone": pii.encrypt(phone), "draft_key": "k"}
    session.create()
    keys.start_rotation()
    out = io.StringIO()
    call_command("rotate_pii_keys", stdout=out)
    assert "1 session drafts" in out.getvalue()
    keys.drop_old()
    resident.refresh_from_db()
    task.refresh_from_db()
    assert resident.reveal_id_number() == number and resident.phones.get().reveal_phone() == phone
    assert task.confirmation == {"address": "7号楼302"}
    assert json.loads(pii.decrypt(raw("clearance_clearancetask", "confirmation", task.pk))) == {"address": "7号楼302"}
    message = SmsMessage.objects.get()
    assert "12345" in pii.decrypt(message.pending_encrypted)
    draft = SessionStore(session_key=session.session_key).load()["appeal_draft"]
    assert pii.decrypt(draft["phone"]) == phone


def test_a_row_changed_during_the_rotation_is_not_reverted(keys, monkeypatch):
    first, second = make_phone(), make_phone()
    resident = resident_create(name="孙八", id_number=make_id_number(), phones=[first])
    entry = resident.phones.get()
    keys.start_rotation()
    real_rotate = pii.rotate

    def rotate_while_the_site_writes(token):
        if token == entry.phone_encrypted:  # the site changes this phone between read and write
            ResidentPhone.objects.filter(pk=entry.pk).update(phone_encrypted=pii.encrypt(second))
        return real_rotate(token)

    monkeypatch.setattr(pii, "rotate", rotate_while_the_site_writes)
    rotate_personal_data_keys()
    keys.drop_old()
    entry.refresh_from_db()
    assert entry.reveal_phone() == second


def test_codes_survive_while_the_old_key_is_listed_and_expire_cleanly_after(keys):
    number, phone = make_id_number(), make_phone()
    resident_create(name="周九", id_number=number, phones=[phone])
    challenge = identity_code_send(name="周九", id_number=number, phone=phone, ip="10.0.0.2")
    from tests.sms_text import last_phone_text

    code = __import__("re").search(r"(?<!\d)\d{6}(?!\d)", last_phone_text()).group(0)
    keys.start_rotation()
    rotate_personal_data_keys()
    assert identity_code_verify(token=challenge.token, code=code).confirmed  # old key still listed

    late = identity_code_send(name="周九", id_number=number, phone=phone, ip="10.0.0.3")
    late_code = __import__("re").search(r"(?<!\d)\d{6}(?!\d)", last_phone_text()).group(0)
    from django.core.cache import cache

    entry = cache.get(f"appeals:code:{late.token}")
    entry["name"] = Fernet(Fernet.generate_key()).encrypt(b"x").decode()  # sealed under a dropped key
    cache.set(f"appeals:code:{late.token}", entry)
    from django.utils import translation

    with translation.override("en"), pytest.raises(ApplicationError, match="expired"):
        identity_code_verify(token=late.token, code=late_code)


def test_a_public_draft_under_a_dropped_key_starts_again_instead_of_a_500(client, keys):
    resident = resident_create(name="吴十", id_number=make_id_number(), phones=[make_phone()])
    session = client.session
    session["appeal_draft"] = {"resident_id": resident.pk, "phone": pii.encrypt(make_phone()),
                               "name": pii.encrypt("吴十"), "id": resident.id_encrypted,
                               "confirmed": True, "draft_key": "dk", "category": "correction"}
    session.save()
    keys.start_rotation()
    keys.drop_old()  # dropped without running the rotation: the draft cannot be opened
    response = client.get("/appeals/file/check/", follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and "start again" in response.content.decode()


def test_the_hash_key_is_rotated_with_rehash(settings, monkeypatch):
    number, phone = make_id_number(), make_phone()
    resident = resident_create(name="郑一", id_number=number, phones=[phone])
    appeal = AppealFactory(resident=resident, contact_phone_encrypted=pii.encrypt(phone),
                           contact_phone_hash=pii.phone_hash(phone))
    new_key = "a-new-hash-key-from-the-vault-0000000000"
    monkeypatch.setenv("PII_HASH_KEY_NEW", new_key)
    out = io.StringIO()
    call_command("rotate_pii_keys", "--rehash", stdout=out)
    assert "re-hashed 3 values" in out.getvalue()
    assert resident_by_id_number(number) is None  # the site must not run on the old key now
    settings.PII_HASH_KEY = new_key
    assert resident_by_id_number(number) == resident and list(residents_by_phone(phone)) == [resident]
    appeal.refresh_from_db()
    assert appeal.contact_phone_hash == pii.phone_hash(phone)
    assert Resident.objects.get(pk=resident.pk).id_hash == pii.id_hash(number)
