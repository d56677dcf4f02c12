"""The demo's access audit: ordinary looks, a reveal with its reason and one open enumeration
alert (operator2), so the supervisors' audit page has something to show."""

import io
import random

import pytest

from communities import demo
from communities.models import AuditAlert, PersonalDataAccess, User
from tests.factories import CommunityFactory, ResidentFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_demo_audit_has_an_open_alert_for_operator2():
    community = CommunityFactory()
    for username, role in (("operator1", User.Role.OPERATOR), ("operator2", User.Role.OPERATOR),
                           ("worker1", User.Role.COMMUNITY_WORKER), ("supervisor1", User.Role.SUPERVISOR)):
        UserFactory(username=username, role=role, communities=[community])
    for _ in range(60):
        ResidentFactory(community=community)
    demo.seed(rng=random.Random(1), stdout=io.StringIO())
    alert = AuditAlert.objects.get()
    assert alert.actor.username == "operator2" and alert.acknowledged_at is None
    assert PersonalDataAccess.objects.filter(action=PersonalDataAccess.Action.REVEAL_ID).get().reason
