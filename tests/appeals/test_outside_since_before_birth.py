"""'Outside the city since' (a stay the relief job selects stranded residents by) cannot be a date
before the person was born, on every form that records it: the operator's phone entry (the
caller's ID number in the same form), the resident's filing step and the clearance confirmation
(the ID number on record)."""

import datetime as dt

import pytest
from django.utils import translation

from appeals.clearance.forms import ConfirmationForm
from appeals.forms import PhoneEntryForm, PopupCategoryForm
from healthkit import clock
from tests.factories import make_id_number
from tests.factories.healthkit import cst

BIRTH = dt.date(2022, 3, 10)
MESSAGE = "This date is before the date of birth in the ID number."


@pytest.fixture(autouse=True)
def _setup():
    with translation.override("en"), clock.frozen_at(cst(2022, 8, 1, 12)):
        yield


def _phone_entry(since: dt.date) -> PhoneEntryForm:
    return PhoneEntryForm({"name": "王某", "id_number": make_id_number(birth=BIRTH), "phone": "13800138000",
                           "category": "correction", "call_outcome": "reached", "outside_since": since.isoformat(),
                           "currently_outside_city": "on"})


def _filing(since: dt.date) -> PopupCategoryForm:
    return PopupCategoryForm({"popup": "unlisted", "category": "correction", "outside_since": since.isoformat(),
                              "currently_outside_city": "on"}, born=BIRTH)


def _confirmation(since: dt.date) -> ConfirmationForm:
    return ConfirmationForm({"location": "outside", "current_place": "武汉市", "outside_since": since.isoformat(),
                             "return_date": "2022-08-10", "return_means": "train", "address": "1-1-101",
                             "contact_phone": "13800138000", "declaration": "on"}, born=BIRTH)


@pytest.mark.parametrize("make", [_phone_entry, _filing, _confirmation], ids=["phone entry", "filing", "confirmation"])
def test_outside_since_before_birth_is_a_field_error_and_the_birth_date_is_not(make):
    before = make(BIRTH - dt.timedelta(days=1))
    assert not before.is_valid()
    assert before.errors["outside_since"] == [MESSAGE]
    on_birth = make(BIRTH)
    on_birth.is_valid()
    assert MESSAGE not in on_birth.errors.get("outside_since", [])


@pytest.mark.django_db
def test_the_birth_date_is_read_from_the_registry_and_none_once_the_person_is_forgotten():
    from communities.models import Resident
    from tests.factories import ResidentFactory

    resident = ResidentFactory(id_number=make_id_number(birth=BIRTH))
    assert resident.birth_date() == BIRTH
    Resident.objects.filter(pk=resident.pk).update(id_encrypted="")  # as retention forgets a person
    resident.refresh_from_db()
    assert resident.birth_date() is None  # was an undecryptable-token error on the confirmation page
    assert _confirmation_for(None, BIRTH - dt.timedelta(days=1)).is_valid()


def _confirmation_for(born, since: dt.date) -> ConfirmationForm:
    form = _confirmation(since)
    form.born = born
    return form
