"""Role escalation through the admin: a staff member given the admin's user and token permissions
(a supervisor managing accounts) manages the staff below them and cannot raise anybody, themselves
included, to an administrator's or superuser's powers, change an administrator's account or
password, or issue a token (a token acts as its user, administrators' included)."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from communities.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(client):
    """A supervisor with every admin permission on accounts and tokens, logged in to the admin."""
    person = UserFactory(role=User.Role.SUPERVISOR, is_staff=True)
    person.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["communities", "authtoken"],
                                                          content_type__model__in=["user", "tokenproxy", "token"]))
    client.force_login(person)
    return person


def _form(user: User, **changes) -> dict:
    data = {"username": user.username, "first_name": "", "last_name": "", "email": "", "is_active": "on",
            "role": user.role, "feeds": [], "lab": "", "date_joined_0": "2022-11-01", "date_joined_1": "08:00:00",
            "initial-date_joined_0": "2022-11-01", "initial-date_joined_1": "08:00:00"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_an_account_manager_cannot_make_anybody_superuser_or_administrator(client, manager):
    url = f"/admin/communities/user/{manager.pk}/change/"
    client.post(url, _form(manager, is_superuser="on", is_staff="on", role=User.Role.ADMINISTRATOR))
    manager.refresh_from_db()
    assert (manager.is_superuser, manager.role) == (False, User.Role.SUPERVISOR)

    operator = UserFactory(role=User.Role.OPERATOR)
    refused = client.post(f"/admin/communities/user/{operator.pk}/change/",
                          _form(operator, role=User.Role.ADMINISTRATOR, is_superuser="on"))
    operator.refresh_from_db()
    assert refused.status_code == 200 and (operator.role, operator.is_superuser) == (User.Role.OPERATOR, False)
    # what they may do: manage staff below them
    moved = client.post(f"/admin/communities/user/{operator.pk}/change/", _form(operator, role="community_worker"))
    operator.refresh_from_db()
    assert moved.status_code == 302 and operator.role == User.Role.COMMUNITY_WORKER


def test_an_account_manager_cannot_touch_an_administrators_account_or_password(client, manager):
    admin = UserFactory(role=User.Role.ADMINISTRATOR, is_staff=True, is_superuser=True)
    client.post(f"/admin/communities/user/{admin.pk}/change/", _form(admin, is_active=None))
    admin.refresh_from_db()
    assert admin.is_active  # not deactivated by a manager below them
    client.post(f"/admin/communities/user/{admin.pk}/password/",
                {"password1": "taken-over-9876", "password2": "taken-over-9876"})
    admin.refresh_from_db()
    assert admin.check_password("pass-1234-word")


def test_only_a_superuser_issues_tokens(client, manager):
    admin = UserFactory(role=User.Role.ADMINISTRATOR, is_staff=True, is_superuser=True)
    assert client.post("/admin/authtoken/tokenproxy/add/", {"user": admin.pk}).status_code == 403
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 403
    assert not Token.objects.exists()
