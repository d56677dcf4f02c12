"""The access audit is append-only in the database itself: UPDATE and DELETE of a row are refused
by a trigger whatever the caller (ORM, raw SQL, bulk), and a typed reason cannot be rewritten
either; only the retention job's deletion of old reasons is allowed."""

import pytest
from django.db import DatabaseError, connection, transaction

from communities.models import PersonalDataAccess, PersonalDataAccessReason, User
from communities.services import access_log
from tests.factories import ResidentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry():
    return access_log(actor=UserFactory(role=User.Role.SUPERVISOR), resident=ResidentFactory(),
                      action=PersonalDataAccess.Action.REVEAL_ID, context="test", reason="电话核实身份")


def _refused(action) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        action()


def test_audit_rows_cannot_be_updated(entry):
    _refused(lambda: PersonalDataAccess.objects.filter(pk=entry.pk).update(context="rewritten"))
    _refused(lambda: PersonalDataAccess.objects.filter(pk=entry.pk).update(resident=None))

    def raw_update():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE communities_personaldataaccess SET action = 'view' WHERE id = %s", [entry.pk])
    _refused(raw_update)
    entry.refresh_from_db()
    assert entry.context == "test" and entry.action == PersonalDataAccess.Action.REVEAL_ID


def test_audit_rows_cannot_be_deleted(entry):
    _refused(lambda: PersonalDataAccess.objects.filter(pk=entry.pk).delete())

    def raw_delete():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM communities_personaldataaccess")
    _refused(raw_delete)
    assert PersonalDataAccess.objects.filter(pk=entry.pk).exists()


def test_a_typed_reason_cannot_be_rewritten_but_can_be_forgotten(entry):
    assert entry.reason == "电话核实身份"
    _refused(lambda: PersonalDataAccessReason.objects.filter(access=entry).update(reason="别的"))
    PersonalDataAccessReason.objects.filter(access=entry).delete()
    entry = PersonalDataAccess.objects.get(pk=entry.pk)
    assert entry.reason == "" and entry.action == PersonalDataAccess.Action.REVEAL_ID


@pytest.mark.parametrize("typed", ["13800138000", "110105199001011234", "11010519900101123X", "王小明",
                                   "%E7%8E%8B%E5%B0%8F%E6%98%8E"])
def test_nothing_person_shaped_reaches_the_permanent_context(typed):
    entry = access_log(actor=UserFactory(), resident=None, action=PersonalDataAccess.Action.EXPORT,
                       context=f"export:appeals.csv?reference={typed}&community=110105900001")
    assert typed not in entry.context
    assert entry.context.startswith("export:appeals.csv?reference=*") and "community=110105900001" in entry.context
