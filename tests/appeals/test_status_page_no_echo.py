"""The status page never writes a typed ID number or phone back into the page, on a hit or a
miss (shared screens, caches and saved pages must not carry them)."""

import pytest
from django.urls import reverse

from communities import pii
from tests.factories import make_id_number
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("hit", [False, True])
def test_the_status_page_does_not_echo_the_id_number_or_phone(client, resident_with_popup, hit):
    resident, popup = resident_with_popup
    appeal = AppealFactory(resident=resident, popup=popup, contact_phone_hash=pii.phone_hash("13800138000"))
    number = resident.reveal_id_number() if hit else make_id_number()
    response = client.post(reverse("appeals:status"), {"reference": appeal.reference, "id_number": number,
                                                        "phone": "13800138000"})
    body = response.content.decode()
    assert response.status_code == (200 if hit else 404)
    assert number not in body and "13800138000" not in body
    if not hit:
        assert "We found no appeal with these details" in body and appeal.reference in body
