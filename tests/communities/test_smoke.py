import pytest

from tests.factories import ResidentFactory


@pytest.mark.django_db
def test_resident_factory_stores_only_masked_and_encrypted_id():
    resident = ResidentFactory()
    assert "*" in resident.id_masked
    assert len(resident.reveal_id_number()) == 18
    assert resident.reveal_id_number() not in resident.id_encrypted
