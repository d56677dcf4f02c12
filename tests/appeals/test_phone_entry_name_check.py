"""Phone entry warns the operator when the name typed does not match the registry for the ID
number (or the number is not registered): one warning for both, the registered name never shown;
nothing is filed until the operator acknowledges, and what was typed stays in the form."""

import pytest
from django.urls import reverse

from appeals.models import Appeal
from communities.models import PersonalDataAccess
from tests.factories import make_id_number

pytestmark = pytest.mark.django_db

WARNING = "does not match the registry for this ID number, or the ID number is not registered"


def _entry(client, **overrides):
    data = {"name": "王五", "phone": "13911112222", "category": "correction", "popup_type_claimed": "3",
            "call_outcome": "reached", "description": "caller's words"} | overrides
    return client.post(reverse("appeals:phone-entry"), data)


@pytest.mark.parametrize("case", ["wrong_name", "unknown_id"])
def test_a_name_the_registry_does_not_confirm_needs_the_operators_acknowledgement(client, operator,
                                                                                resident_with_popup, case):
    resident, _popup = resident_with_popup
    client.force_login(operator)
    number = resident.reveal_id_number() if case == "wrong_name" else make_id_number()
    response = _entry(client, id_number=number)
    body = response.content.decode()
    # then a clear warning, the same for both cases, and nothing is filed
    assert response.status_code == 400 and WARNING in body
    assert resident.name not in body and not Appeal.objects.exists()
    assert "caller&#x27;s words" in body or "caller's words" in body  # what was typed is kept
    # the look-up is audited even though nothing was filed
    assert PersonalDataAccess.objects.filter(context="appeals:phone-entry").count() == 1
    # when the operator acknowledges, it is filed as an unconfirmed filer's appeal
    response = _entry(client, id_number=number, identity_acknowledged="on")
    appeal = Appeal.objects.get()
    assert response.status_code == 302 and appeal.filer_unconfirmed and appeal.popup is None


def test_the_registered_name_files_without_a_warning(client, operator, resident_with_popup):
    resident, popup = resident_with_popup
    client.force_login(operator)
    response = _entry(client, name=resident.name, id_number=resident.reveal_id_number(), phone="13800138000")
    appeal = Appeal.objects.get()
    # the caller's phone is on the record and the name matches: the caller is the resident
    assert response.status_code == 302 and not appeal.filer_unconfirmed and appeal.popup == popup
