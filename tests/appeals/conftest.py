import pytest

from communities.models import User
from tests.factories import (
    CommunityFactory,
    CompoundAliasFactory,
    PopupCaseFactory,
    ResidentFactory,
    UserFactory,
)


@pytest.fixture
def community(db):
    community = CommunityFactory(name="望京西园社区")
    CompoundAliasFactory(community=community, name="望京西园三区")
    return community


@pytest.fixture
def resident_with_popup(community):
    resident = ResidentFactory(name="李雷", community=community, phone="13800138000")
    popup = PopupCaseFactory(resident=resident, popup_type=3)
    return resident, popup


@pytest.fixture
def operator(db):
    return UserFactory(username="op-a", role=User.Role.OPERATOR)


@pytest.fixture
def enrolled_operator(client, operator):
    """An operator with an authenticator, signed in and verified: the page loads the device too."""
    from tests.otp import device_for

    device_for(operator)
    client.force_login(operator)
    return operator


@pytest.fixture
def operator_b(db):
    return UserFactory(username="op-b", role=User.Role.OPERATOR)


@pytest.fixture
def supervisor(db):
    return UserFactory(username="sup", role=User.Role.SUPERVISOR)


@pytest.fixture(autouse=True)
def _english():
    """Assertions read English msgids; the site default is zh-hans."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def client():
    from django.test import Client

    return Client(HTTP_ACCEPT_LANGUAGE="en")


def last_sms_body() -> str:
    from tests.sms_text import last_phone_text

    return last_phone_text()
