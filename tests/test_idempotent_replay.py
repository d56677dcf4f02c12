"""A POST replayed with its Idempotency-Key (healthkit.api.IdempotentPost, idempotent_post) is
answered only after the checks a fresh request passes, and is audited like one: before, the
stored answer went back to whoever held the key, whatever their role or community had become
since, and no audit row said they had seen it again."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from appeals.clearance import services as clearance_services
from appeals.models import Appeal
from communities.models import PersonalDataAccess, User
from healthkit.api import IdempotentPost
from tests.factories import CommunityFactory, UserFactory, make_id_number
from tests.factories.appeals import AppealFactory
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def _idempotent_routes(resolver: URLResolver | None = None, prefix: str = ""):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from _idempotent_routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            view = getattr(entry.callback, "view_class", None)
            if isinstance(view, type) and issubclass(view, IdempotentPost):
                yield prefix + str(entry.pattern), view, entry.pattern.regex.groupindex


def test_every_idempotent_post_on_an_object_rechecks_its_access_on_replay():
    """A view whose URL names an object checks the caller's access to it in its post; a replay
    must pass the same door (replay_check), or a caller who lost it gets the stored answer."""
    routes = list(_idempotent_routes())
    assert len(routes) >= 12
    missing = [f"{view.__name__} ({route})" for route, view, kwargs in routes
               if kwargs and view.replay_check is IdempotentPost.replay_check]
    assert not missing, f"no replay_check: {missing}"


def _client(user) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(user=user).key)
    return client


def _replays(context: str) -> int:
    return PersonalDataAccess.objects.filter(context__endswith=context).count()


def test_a_replay_after_the_role_changed_is_refused_not_answered():
    operator = UserFactory(role=User.Role.OPERATOR)
    appeal = AppealFactory()
    client = _client(operator)
    url = reverse("appeals:api-contacts", args=[appeal.reference])
    body = {"direction": "outbound", "outcome": "reached", "note": "called back"}
    first = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="call-1")
    assert first.status_code == 201
    again = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="call-1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert _replays(":api-contacts:replay") == 1  # audited like a fresh request

    User.objects.filter(pk=operator.pk).update(role=User.Role.VENUE_MANAGER)
    refused = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="call-1")
    assert refused.status_code == 403 and "Idempotent-Replayed" not in refused
    assert str(appeal.reference) not in refused.content.decode()


def test_a_replayed_filing_is_audited_and_refused_once_the_role_is_gone(community, monkeypatch):
    from appeals.clearance import tasks
    from tests.factories import ResidentFactory

    monkeypatch.setattr(tasks.clearance_open_for_appeal, "delay", lambda pk: None)
    caller = ResidentFactory(name="周八", community=community, phone="13300001111")
    body = {"name": "周八", "id_number": caller.reveal_id_number(), "phone": "13300001111",
            "category": "emergency_business", "community_code": community.code}
    operator = UserFactory(role=User.Role.OPERATOR)
    client = _client(operator)
    first = client.post(reverse("appeals:api-create"), body, format="json", HTTP_IDEMPOTENCY_KEY="f-1")
    assert first.status_code == 201
    seen = PersonalDataAccess.objects.filter(actor=operator, resident=caller).count()
    again = client.post(reverse("appeals:api-create"), body, format="json", HTTP_IDEMPOTENCY_KEY="f-1")
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert PersonalDataAccess.objects.filter(actor=operator, resident=caller).count() == seen + 1
    User.objects.filter(pk=operator.pk).update(role=User.Role.COMMUNITY_WORKER)
    assert client.post(reverse("appeals:api-create"), body, format="json",
                       HTTP_IDEMPOTENCY_KEY="f-1").status_code == 403
    assert Appeal.objects.count() == 1


def test_a_replay_after_the_community_was_taken_away_is_refused():
    mine = CommunityFactory()
    task = clearance_services.clearance_open_for_appeal(
        appeal=RoutedAppealFactory(resident__community=mine, popup__popup_type=1))
    worker = WorkerFactory(communities=[mine])
    client = _client(worker)
    url = reverse("clearance:api-decision", args=[task.pk])
    body = {"decision": "info", "question": "Where were you on the 3rd?"}
    assert client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="d-1").status_code == 200
    assert client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="d-1")["Idempotent-Replayed"] == "true"
    assert _replays("/api:decision:replay") == 1

    worker.communities.clear()
    refused = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="d-1")
    assert refused.status_code == 403 and task.reference not in refused.content.decode()


def test_another_caller_presenting_the_key_gets_no_stored_answer():
    appeal = AppealFactory()
    owner, other = UserFactory(role=User.Role.OPERATOR), UserFactory(role=User.Role.VENUE_MANAGER)
    url = reverse("appeals:api-contacts", args=[appeal.reference])
    body = {"direction": "outbound", "outcome": "reached", "note": "n"}
    assert _client(owner).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    stranger = _client(other).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert stranger.status_code == 403 and "Idempotent-Replayed" not in stranger


@pytest.fixture
def community(db):
    return CommunityFactory()


def test_a_replayed_open311_filing_is_audited_and_refused_once_the_feed_is_withdrawn(client):
    ticket_system = UserFactory(role=User.Role.INTEGRATION)
    key = Token.objects.create(user=ticket_system).key
    data = {"api_key": key, "service_code": "correction", "first_name": "小明", "last_name": "王",
            "phone": "13600009999", "attribute[id_number]": make_id_number(), "address_string": "望京西园三区"}
    first = client.post("/open311/v2/requests.json", data, HTTP_IDEMPOTENCY_KEY="req-1")
    assert first.status_code == 201
    again = client.post("/open311/v2/requests.json", data, HTTP_IDEMPOTENCY_KEY="req-1")
    assert again["Idempotent-Replayed"] == "true" and _replays(":open311-replay") == 1
    User.objects.filter(pk=ticket_system.pk).update(feeds=[User.Feed.TEST_RESULTS])
    refused = client.post("/open311/v2/requests.json", data, HTTP_IDEMPOTENCY_KEY="req-1")
    assert refused.status_code == 403 and first.json()[0]["service_request_id"] not in refused.content.decode()
