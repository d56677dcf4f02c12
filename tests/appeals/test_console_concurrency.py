"""Two operators acting on the same ticket at the same moment, the same form sent twice, and a
form posted after the ticket changed: exactly one action happens, the other person is told the
ticket changed (healthkit.concurrency), and nothing is doubled (SMS, links, calls, events)."""

import pytest
from django.urls import reverse

from appeals.models import Appeal, AppealContact, AppealEvent, AppealLink
from appeals.services import appeal_link_submit, appeal_request_evidence
from communities.models import User
from healthkit.models import SmsMessage
from tests.concurrency import at_once, page_seen, post_messages, signed_in
from tests.factories import PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory, upload

pytestmark = pytest.mark.django_db(transaction=True)

CHANGED = "This record changed after you opened the page"


@pytest.fixture
def appeal():
    resident = ResidentFactory(phone="13800138000")
    popup = PopupCaseFactory(resident=resident, popup_type=3)
    return AppealFactory(resident=resident, popup=popup, popup_type_claimed=3, contact_phone_masked="138****8000")


def _operators(n: int = 2) -> list[User]:
    return [UserFactory(username=f"op-race-{i}", role=User.Role.OPERATOR) for i in range(n)]


def _action(appeal: Appeal, action: str) -> str:
    return reverse("appeals:ticket-action", args=[appeal.pk, action])


def _ticket(appeal: Appeal) -> str:
    return reverse("appeals:ticket", args=[appeal.pk])


def _refused_once(results: list[object], done: str) -> None:
    flat = [m for messages in results for m in messages]
    assert sorted(m.startswith(CHANGED) for m in flat) == [False, True], flat
    assert [m for m in flat if not m.startswith(CHANGED)] == [done]


def test_two_operators_claiming_at_once_one_gets_it_the_other_is_told(appeal):
    first, second = (signed_in(op) for op in _operators())
    forms = [page_seen(c, _ticket(appeal)) for c in (first, second)]

    results = at_once(*(lambda c=c, f=f: post_messages(c, _action(appeal, "assign-me"), f)
                        for c, f in zip((first, second), forms, strict=True)))

    _refused_once(results, "The appeal is yours.")
    appeal.refresh_from_db()
    assert appeal.events.filter(kind=AppealEvent.Kind.ASSIGNED).count() == 1
    winner = 0 if results[0] == ["The appeal is yours."] else 1
    assert appeal.assigned_to.username == f"op-race-{winner}"


def test_two_operators_closing_with_different_outcomes_one_decision_stands(appeal):
    clients = [signed_in(op) for op in _operators()]
    forms = [page_seen(c, _ticket(appeal)) for c in clients]
    outcomes = ["lifted", "rejected"]

    results = at_once(*(lambda i=i: post_messages(clients[i], _action(appeal, "close"),
                                                  {**forms[i], "reason": f"checked {i}", "outcome": outcomes[i]})
                        for i in range(2)))

    _refused_once(results, "Appeal closed.")
    winner = 0 if results[0] == ["Appeal closed."] else 1
    appeal.refresh_from_db()
    assert appeal.status == Appeal.Status.CLOSED and appeal.outcome == outcomes[winner]
    assert appeal.events.filter(kind=AppealEvent.Kind.CLOSED).count() == 1
    assert SmsMessage.objects.filter(purpose__contains="closed").count() <= 1


def test_evidence_request_sent_twice_at_once_sends_one_sms(appeal):
    client = signed_in(_operators(1)[0])
    form = {**page_seen(client, _ticket(appeal)), "message": "请补充行程卡截图"}

    results = at_once(*(lambda: post_messages(client, _action(appeal, "request-evidence"), form),) * 2)

    _refused_once(results, "The resident has been sent an SMS with a link to add evidence.")
    assert AppealLink.objects.filter(appeal=appeal).count() == 1
    assert SmsMessage.objects.filter(purpose__contains="evidence").count() == 1
    assert appeal.events.filter(kind=AppealEvent.Kind.EVIDENCE_REQUESTED).count() == 1


def test_call_form_sent_twice_at_once_logs_one_call(appeal):
    client = signed_in(_operators(1)[0])
    form = {**page_seen(client, _ticket(appeal)), "direction": "outbound", "outcome": "reached", "note": "已回电"}

    results = at_once(*(lambda: post_messages(client, _action(appeal, "contact"), form),) * 2)

    _refused_once(results, "Call logged.")
    assert AppealContact.objects.filter(appeal=appeal).count() == 1


def test_two_operators_routing_to_different_communities_one_routing_stands(appeal):
    from tests.factories import CommunityFactory

    clients = [signed_in(op) for op in _operators()]
    forms = [page_seen(c, _ticket(appeal)) for c in clients]
    communities = [appeal.resident.community, CommunityFactory()]

    results = at_once(*(lambda i=i: post_messages(clients[i], _action(appeal, "route"),
                                                  {**forms[i], "community_code": communities[i].code, "reason": "r"})
                        for i in range(2)))

    flat = [m for messages in results for m in messages]
    assert sum(m.startswith(CHANGED) for m in flat) == 1, flat
    appeal.refresh_from_db()
    assert appeal.events.filter(kind=AppealEvent.Kind.ROUTED).count() == 1
    winner = 0 if not results[0][0].startswith(CHANGED) else 1
    assert appeal.routed_community == communities[winner]


def test_back_button_resubmit_of_a_close_after_it_took_effect_is_refused(appeal):
    client = signed_in(_operators(1)[0])
    form = {**page_seen(client, _ticket(appeal)), "reason": "行程核实无误", "outcome": "lifted"}
    assert post_messages(client, _action(appeal, "close"), form) == ["Appeal closed."]

    again = post_messages(client, _action(appeal, "close"), {**form, "outcome": "rejected"})

    assert again[-1].startswith(CHANGED)  # after the first post's "Appeal closed.", never shown (no GET)
    appeal.refresh_from_db()
    assert appeal.outcome == "lifted"


def test_decision_form_opened_before_the_resident_answered_is_refused(appeal, monkeypatch):
    from appeals import notices

    operator = _operators(1)[0]
    sent: dict[str, str] = {}
    monkeypatch.setattr(notices, "notify_waiting",
                        lambda appeal, *, link, url, message="": sent.update(token=url.rstrip("/").rsplit("/", 1)[-1]))
    appeal_request_evidence(appeal=appeal, actor=operator)
    client = signed_in(operator)
    form = {**page_seen(client, _ticket(appeal)), "reason": "没有新材料", "outcome": "rejected"}
    appeal_link_submit(token=sent["token"], uploads=[upload()], note="补充了核酸报告")

    refused = post_messages(client, _action(appeal, "close"), form)

    assert len(refused) == 1 and refused[0].startswith(CHANGED)
    appeal.refresh_from_db()
    assert appeal.is_open


def test_every_action_form_on_the_ticket_carries_the_version(appeal):
    client = signed_in(_operators(1)[0])
    page = client.get(_ticket(appeal)).content.decode()
    prefix = f'action="/console/appeals/{appeal.pk}/'
    forms = [chunk.split("</form>")[0] for chunk in page.split("<form")[1:] if prefix in chunk.split(">")[0]]
    assert len(forms) >= 8  # call, assign to me, assign, priority, evidence, route, merge, close
    assert all('name="seen"' in form for form in forms)
