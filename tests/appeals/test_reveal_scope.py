"""The ticket offers "reveal" only to those whose reveal goes through: hotline staff, workers of the
resident's registered community, and workers of the community the appeal was routed to (which
must reach the resident to decide). Every reveal is audited; a refused one is a message, never a
bare 403 for a button the page offered."""

import pytest
from django.urls import reverse

from appeals.models import AppealEvent
from appeals.services import appeal_route
from communities.models import PersonalDataAccess, User
from tests.factories import CommunityFactory, UserFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db
REVEAL_BUTTON = "Reveal (audited)"


@pytest.fixture
def appeal(resident_with_popup):
    resident, popup = resident_with_popup
    return AppealFactory(resident=resident, popup=popup, community=CommunityFactory(name="居民所选社区"))


def _reveals(actor):
    return PersonalDataAccess.objects.filter(actor=actor, action=PersonalDataAccess.Action.REVEAL_ID)


def test_worker_of_the_routed_community_reveals_with_an_audit(client, appeal, operator):
    # given an appeal routed to a community that is not the resident's registered one
    routed = CommunityFactory(name="负责社区")
    assert appeal.resident.community != routed
    appeal_route(appeal=appeal, community=routed, actor=operator)
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[routed])
    client.force_login(worker)
    # the ticket offers the reveal
    assert REVEAL_BUTTON in client.get(reverse("appeals:ticket", args=[appeal.pk])).content.decode()
    # when the worker reveals with a reason
    response = client.post(reverse("appeals:ticket", args=[appeal.pk]), {"reason": "to call about the return"})
    # then the details are shown once, audited in the registry and the history
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert appeal.resident.reveal_id_number() in response.content.decode()
    assert _reveals(worker).get().context == f"appeal:{appeal.pk}"
    assert appeal.events.get(kind=AppealEvent.Kind.REVEALED).actor == worker


def test_worker_of_the_named_community_is_not_offered_a_reveal_and_a_forced_one_is_refused(client, appeal):
    # given a worker of the community the resident named (not registered there; appeal not routed)
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[appeal.community])
    client.force_login(worker)
    page = client.get(reverse("appeals:ticket", args=[appeal.pk]))
    assert page.status_code == 200 and REVEAL_BUTTON not in page.content.decode()
    # when a reveal is posted anyway
    response = client.post(reverse("appeals:ticket", args=[appeal.pk]), {"reason": "curious"})
    # then it is a readable refusal on the ticket (said once), nothing revealed or logged as revealed
    assert response.status_code == 302 and response["Location"] == reverse("appeals:ticket", args=[appeal.pk])
    body = client.get(response["Location"]).content.decode()
    assert body.count("You can see the full details only of residents of your communities") == 1
    assert appeal.resident.reveal_id_number() not in body
    assert not _reveals(worker).exists()
    assert not appeal.events.filter(kind=AppealEvent.Kind.REVEALED).exists()


def test_worker_of_the_registered_community_still_reveals(client, appeal):
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[appeal.resident.community, appeal.community])
    client.force_login(worker)
    assert REVEAL_BUTTON in client.get(reverse("appeals:ticket", args=[appeal.pk])).content.decode()
    response = client.post(reverse("appeals:ticket", args=[appeal.pk]), {"reason": "home visit"})
    assert appeal.resident.reveal_id_number() in response.content.decode()
    assert _reveals(worker).count() == 1
