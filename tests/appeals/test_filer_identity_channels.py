"""A filer's name and ID number are the filer's words, on every channel (online form, 12345 phone
entry, Open311): they never create or rename a registry record, a wrong name and an unknown ID
number get the same answer (no registry oracle), an unconfirmed filing never folds into the
resident's own appeal, and the real owner is never locked out by what an earlier filer typed."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from appeals.models import Appeal
from communities import pii
from communities.models import Resident, User
from tests.appeals.test_resident_filing import _code_from
from tests.factories import (
    CommunityFactory,
    PopupCaseFactory,
    ResidentFactory,
    UserFactory,
    make_id_number,
)
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db

OWNER_PHONE = "13800138000"
FILER_PHONE = "13911112222"
CHANNELS = ["online", "phone", "open311"]


def _file_online(name: str, id_number: str, phone: str, community: int | None = None) -> tuple[int, str]:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.post(reverse("appeals:file-identify"), {"name": name, "id_number": id_number, "phone": phone})
    response = client.post(reverse("appeals:file-verify"), {"code": _code_from(None)})
    assert response.status_code == 302, response.content.decode()[:1000]
    client.post(reverse("appeals:file-popup"), {"popup": "unlisted", "popup_type_claimed": "3",
                                                "category": "correction"})
    client.post(reverse("appeals:file-community"),
                {"action": "confirm", "community": community} if community else {"action": "skip"})
    client.post(reverse("appeals:file-details"), {"description": "my popup", "action": "continue"})
    response = client.post(reverse("appeals:file-check"))
    done = client.session.get("appeal_done") or {}
    return response.status_code, done.get("reference", "")


def _file_by_phone(name: str, id_number: str, phone: str, community: int | None = None) -> tuple[int, str]:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(UserFactory(role=User.Role.OPERATOR))
    response = client.post(reverse("appeals:phone-entry"), {
        "name": name, "id_number": id_number, "phone": phone, "category": "correction",
        "popup_type_claimed": "3", "call_outcome": "reached", "identity_acknowledged": "on",
        "address": "望京西园三区" if community else ""})
    appeal = Appeal.objects.filter(channel=Appeal.Channel.PHONE).order_by("-id").first()
    return response.status_code, appeal.reference if appeal and response.status_code == 302 else ""


def _file_open311(name: str, id_number: str, phone: str, community: int | None = None) -> tuple[int, str]:
    key = Token.objects.get_or_create(user=UserFactory(role=User.Role.INTEGRATION))[0].key
    response = Client().post("/open311/v2/requests.json", {
        "api_key": key, "service_code": "correction", "last_name": name[0], "first_name": name[1:],
        "phone": phone, "attribute[id_number]": id_number, "attribute[popup_type]": "3",
        "address_string": "朝阳区望京西园三区"})
    body = response.json()
    return response.status_code, body[0].get("service_request_id", "") if response.status_code == 201 else ""


FILE = {"online": _file_online, "phone": _file_by_phone, "open311": _file_open311}


@pytest.fixture
def owner():
    resident = ResidentFactory(name="李雷", community=CommunityFactory(), phone=OWNER_PHONE)
    popup = PopupCaseFactory(resident=resident, popup_type=3)
    return resident, popup


@pytest.mark.parametrize("channel", CHANNELS)
def test_an_unknown_id_number_registers_nobody(channel):
    number = make_id_number()
    status, reference = FILE[channel]("张三", number, FILER_PHONE)
    assert reference, status
    assert not Resident.objects.exists()
    appeal = Appeal.objects.get(reference=reference)
    assert appeal.resident is None and appeal.filer_unconfirmed
    assert appeal.claimed_id_hash == pii.id_hash(number) and pii.decrypt(appeal.claimed_name_encrypted) == "张三"


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_wrong_name_and_an_unknown_id_get_the_same_answer(channel, owner):
    resident, _popup = owner
    wrong_name = FILE[channel]("王五", resident.reveal_id_number(), FILER_PHONE)
    unknown_id = FILE[channel]("王五", make_id_number(), FILER_PHONE)
    assert wrong_name[0] == unknown_id[0] and wrong_name[1] and unknown_id[1]
    resident.refresh_from_db()
    assert resident.name == "李雷" and resident.phones.count() == 1  # the record is never renamed or extended


@pytest.mark.parametrize("channel", CHANNELS)
def test_an_unconfirmed_filing_never_folds_into_the_residents_appeal(channel, owner):
    resident, popup = owner
    theirs = AppealFactory(resident=resident, popup=popup, popup_type_claimed=3,
                           contact_phone_hash=pii.phone_hash(OWNER_PHONE))
    # the right name and ID number, from a phone not on the record
    _status, reference = FILE[channel](resident.name, resident.reveal_id_number(), FILER_PHONE)
    assert reference and reference != theirs.reference
    theirs.refresh_from_db()
    assert theirs.repeat_count == 0
    filed = Appeal.objects.get(reference=reference)
    assert filed.filer_unconfirmed and filed.popup is None


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_real_owner_is_not_locked_out_by_an_earlier_filer(channel, sms_outbox):
    # an earlier filer typed a wrong name for an ID number nobody had registered yet
    number = make_id_number()
    FILE[channel]("冒名", number, FILER_PHONE)
    # the trusted registry then holds the real owner (e.g. the population feed)
    owner = ResidentFactory(name="韩梅梅", id_number=number, phone=OWNER_PHONE)
    popup = PopupCaseFactory(resident=owner, popup_type=3)
    # the owner files online from the phone on record and is the resident
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.post(reverse("appeals:file-identify"), {"name": "韩梅梅", "id_number": number, "phone": OWNER_PHONE})
    response = client.post(reverse("appeals:file-verify"), {"code": _code_from(sms_outbox)})
    assert response.url == reverse("appeals:file-popup")
    assert f'value="{popup.pk}"' in client.get(reverse("appeals:file-popup")).content.decode()
    owner.refresh_from_db()
    assert owner.name == "韩梅梅"


def test_an_operator_confirms_the_filer_without_renaming_the_registry(owner):
    from appeals.services import appeal_confirm_filer
    from healthkit.errors import ApplicationError

    resident, _popup = owner
    operator = UserFactory(role=User.Role.OPERATOR)
    _status, reference = _file_open311("王五", resident.reveal_id_number(), FILER_PHONE)
    wrong = Appeal.objects.get(reference=reference)
    with pytest.raises(ApplicationError):
        appeal_confirm_filer(appeal=wrong, actor=operator, reason="called back")
    resident.refresh_from_db()
    assert resident.name == "李雷"
    _status, reference = _file_open311("李雷", resident.reveal_id_number(), FILER_PHONE)
    right = appeal_confirm_filer(appeal=Appeal.objects.get(reference=reference), actor=operator,
                                 reason="called back the phone on record")
    assert not right.filer_unconfirmed and right.resident == resident
    assert right.events.filter(kind="filer_confirmed", public=False).exists()
    # an ID number nobody registered: the checking operator registers the person (no phone)
    number = make_id_number()
    _status, reference = _file_open311("张三", number, FILER_PHONE)
    confirmed = appeal_confirm_filer(appeal=Appeal.objects.get(reference=reference), actor=operator,
                                     reason="saw the ID card")
    assert confirmed.resident.name == "张三" and not confirmed.resident.phones.exists()


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_community_an_unconfirmed_filer_names_sees_the_filers_words_only(channel, owner):
    from tests.factories import CompoundAliasFactory

    resident, popup = owner
    named = CommunityFactory(name="被点名社区")
    CompoundAliasFactory(community=named, name="望京西园三区")
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[named])
    _status, reference = FILE[channel]("王五", resident.reveal_id_number(), FILER_PHONE, community=named.pk)
    appeal = Appeal.objects.get(reference=reference)
    assert appeal.community == named and appeal.filer_unconfirmed
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(worker)
    ticket = client.get(reverse("appeals:ticket", args=[appeal.pk])).content.decode()
    detail = client.get(reverse("appeals:api-detail", args=[reference])).json()
    # the filer's words reach the named community, the resident's record does not
    assert reference in ticket and detail["reference"] == reference
    for page in (ticket, str(detail)):
        assert f"/console/popups/{popup.pk}/" not in page and resident.masked not in page
        assert str(resident.community) not in page
    assert detail["popup_explanation"] == []


def test_the_id_number_given_is_found_again_after_the_hash_key_is_rotated(settings):
    from appeals.selectors import appeal_for_status
    from communities.services import rehash_personal_data

    number = make_id_number()
    _status, reference = _file_open311("张三", number, FILER_PHONE)
    new_key = "another-hash-key-from-the-vault-000000000"
    rehash_personal_data(new_key=new_key)
    settings.PII_HASH_KEY = new_key
    found = appeal_for_status(reference=reference, id_number=number, phone=FILER_PHONE)
    assert found is not None and found.appeal.claimed_id_hash == pii.id_hash(number)


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_filer_name_of_the_longest_allowed_length_is_filed_on_every_channel(channel):
    # given a name of 64 characters (the longest a name may be) for an unknown ID number
    name = "欧阳" + "娜" * 62
    number = make_id_number()
    # when it is filed on the channel
    status, reference = FILE[channel](name, number, FILER_PHONE)
    # then it is filed (not a 500 from a masked name longer than its column), masked in full
    assert reference, status
    appeal = Appeal.objects.get(reference=reference)
    assert appeal.claimed_masked == pii.masked_person(name, pii.mask_id(number))
    assert len(appeal.claimed_masked) == 83
