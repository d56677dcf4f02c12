"""Once the hotline routes an appeal to a community, only that community's workers see it (queue
row, ticket, evidence, API); the community the resident named keeps seeing it only until then."""

import pytest
from django.urls import reverse

from appeals.services import appeal_route, evidence_store
from communities.models import User
from tests.factories import CommunityFactory, UserFactory
from tests.factories.appeals import AppealFactory, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def named():
    return CommunityFactory(name="居民所选社区")


@pytest.fixture
def appeal(resident_with_popup, named):
    resident, popup = resident_with_popup
    appeal = AppealFactory(resident=resident, popup=popup, community=named)
    evidence_store(upload=upload(), appeal=appeal)
    return appeal


def _sees(client, user, appeal) -> dict[str, bool]:
    client.force_login(user)
    evidence = appeal.evidence.get()
    return {
        "queue": appeal.reference in client.get(reverse("appeals:queue"), {"queue": "all"}).content.decode(),
        "ticket": client.get(reverse("appeals:ticket", args=[appeal.pk])).status_code == 200,
        "evidence": client.get(reverse("appeals:evidence-file", args=[evidence.pk])).status_code == 200,
        "thumb": client.get(reverse("appeals:evidence-thumb", args=[evidence.pk])).status_code == 200,
        "api_list": appeal.reference in [r["reference"] for r in client.get(reverse("appeals:api-list")).json()["results"]],
        "api_detail": client.get(reverse("appeals:api-detail", args=[appeal.reference])).status_code == 200,
        "api_evidence": client.get(reverse("appeals:api-evidence", args=[appeal.reference])).status_code == 200,
        "api_file": client.get(reverse("appeals:api-evidence-file", args=[evidence.pk])).status_code == 200,
    }


def test_before_routing_the_named_community_sees_the_appeal(client, appeal, named):
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[named])
    assert all(_sees(client, worker, appeal).values())


def test_after_routing_elsewhere_only_the_routed_community_sees_it(client, appeal, named, operator):
    # given the hotline routes the appeal to another community than the one the resident named
    routed = CommunityFactory(name="负责社区")
    appeal_route(appeal=appeal, community=routed, actor=operator, reason="wrong community named")
    named_worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[named])
    routed_worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[routed])
    # then the named community's worker sees nothing of it, anywhere
    assert not any(_sees(client, named_worker, appeal).values())
    # while the routed community's worker sees all of it
    assert all(_sees(client, routed_worker, appeal).values())


def test_routed_back_to_the_named_community_it_stays_visible_there(client, appeal, named, operator):
    appeal_route(appeal=appeal, community=named, actor=operator)
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[named])
    assert all(_sees(client, worker, appeal).values())
