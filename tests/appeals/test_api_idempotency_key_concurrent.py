"""The same Idempotency-Key sent twice at the same moment (a client retrying on a timeout while
its first request still runs) does the work once: the retry waits for the first request, then
replays its answer; if the first failed (a 5xx, nothing kept), the retry does the work itself."""

import threading

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from appeals import api as appeals_api
from appeals.models import Appeal, AppealContact
from communities.models import User
from tests.factories import CommunityFactory, ResidentFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def entry(monkeypatch):
    from appeals.clearance import tasks

    monkeypatch.setattr(tasks.clearance_open_for_appeal, "delay", lambda pk: None)
    community = CommunityFactory()
    caller = ResidentFactory(name="周八", community=community, phone="13300001111")
    token = Token.objects.create(user=UserFactory(role=User.Role.OPERATOR)).key
    body = {"name": "周八", "id_number": caller.reveal_id_number(), "phone": "13300001111",
            "category": "emergency_business", "community_code": community.code}
    return token, body


def _post(token, body, answers):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en", raise_request_exception=False)  # a crash is a 500 answer
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    try:
        answers.append(client.post(reverse("appeals:api-create"), body, format="json", HTTP_IDEMPOTENCY_KEY="call-1"))
    finally:
        connection.close()


def _held_first_request(monkeypatch, *, fail: bool):
    """The first request's filing blocks (inside its transaction) until released; `fail` makes it crash."""
    inside, release = threading.Event(), threading.Event()
    real = appeals_api.services.appeal_file_by_phone
    calls = []

    def held(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            inside.set()
            release.wait(10)
            if fail:
                raise RuntimeError("the first try crashed")
        return real(**kwargs)

    monkeypatch.setattr(appeals_api.services, "appeal_file_by_phone", held)
    return inside, release


@pytest.mark.parametrize("fail", [False, True])
def test_a_retry_sent_while_the_first_runs_waits_and_the_work_is_done_once(entry, monkeypatch, fail):
    token, body = entry
    inside, release = _held_first_request(monkeypatch, fail=fail)
    first_answers, second_answers = [], []
    first = threading.Thread(target=_post, args=(token, body, first_answers))
    first.start()
    assert inside.wait(10)
    second = threading.Thread(target=_post, args=(token, body, second_answers))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting for the first request's key
    release.set()
    first.join(10)
    second.join(10)
    assert first_answers[0].status_code == (500 if fail else 201)
    assert second_answers[0].status_code == 201
    assert ("Idempotent-Replayed" in second_answers[0]) is not fail  # replayed, or done by the retry
    appeal = Appeal.objects.get()
    assert (appeal.repeat_count, AppealContact.objects.filter(appeal=appeal).count()) == (0, 1)
