import pytest
from cryptography.fernet import Fernet

from communities import pii
from communities.models import Resident
from communities.selectors import resident_by_id_number, residents_by_phone
from communities.services import resident_create, rotate_personal_data_keys
from tests.factories import CommunityFactory, make_id_number, make_phone


def test_encryption_round_trip_and_randomised_tokens():
    token_a, token_b = pii.encrypt("11010519491231002X"), pii.encrypt("11010519491231002X")
    assert token_a != token_b
    assert pii.decrypt(token_a) == "11010519491231002X"


@pytest.mark.django_db
def test_resident_is_found_by_keyed_hash_and_never_stored_in_clear():
    number, phone = make_id_number(), make_phone()
    resident = resident_create(name="赵六", id_number=number, phones=[phone], community=CommunityFactory())
    row = Resident.objects.filter(pk=resident.pk).values().get()
    assert number not in str(row)
    assert resident_by_id_number(number.lower()) == resident
    assert list(residents_by_phone(phone)) == [resident]
    assert resident.reveal_id_number() == number
    assert resident.phones.get().reveal_phone() == phone


@pytest.mark.django_db
def test_hash_depends_on_the_secret_key(settings):
    number = make_id_number()
    before = pii.id_hash(number)
    settings.PII_HASH_KEY = "another-key"
    assert pii.id_hash(number) != before


@pytest.mark.django_db
def test_key_rotation_re_encrypts_under_the_new_key(settings):
    number = make_id_number()
    resident = resident_create(name="钱七", id_number=number, phones=[make_phone()])
    old_key = settings.PII_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.PII_ENCRYPTION_KEYS = [new_key, old_key]
    assert rotate_personal_data_keys() == 2
    settings.PII_ENCRYPTION_KEYS = [new_key]  # the old key is gone: data still readable
    resident.refresh_from_db()
    assert resident.reveal_id_number() == number
