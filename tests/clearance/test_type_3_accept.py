"""Popup 3 is lifted only through the risk investigation (DOMAIN: "nothing found" → signed
commitment letter + a negative test → lifted; otherwise the outcome's measures): the worker's
"accept" is refused before that, the page does not offer it, the measures sweep lifts it when
the conditions hold. Other popup types are accepted as before; popup 4 is never a community's."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils.html import escape
from rest_framework.test import APIClient

from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceTask
from appeals.models import Appeal
from healthkit import clock
from healthkit.errors import ApplicationError
from healthkit.models import PopupCase, SmsMessage
from healthkit.selectors import health_code_at
from tests.clearance.helpers import checkpoint_preapproval, negative_result, token_in
from tests.factories import PopupCaseFactory, ResidentFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db
AT = cst(2022, 11, 10, 10)


@pytest.fixture
def task():
    popup = PopupCaseFactory(popup_type=3, source="venue", raised_at=AT - dt.timedelta(days=1))
    return ClearanceTaskFactory(resident=popup.resident, popup=popup, created_at=AT - dt.timedelta(hours=20))


@pytest.fixture
def worker(task):
    return WorkerFactory(communities=[task.community])


def _state(task):
    task.refresh_from_db()
    task.popup.refresh_from_db()
    return task.state, task.popup.state


def test_accept_of_an_uninvestigated_popup_3_is_refused(task, worker, sms_outbox):
    # given an open popup-3 task, confirmed by the resident
    with clock.frozen_at(AT):
        services.clearance_task_transition(task=task, to=ClearanceTask.State.CONFIRMED, kind="confirmed")

    # when the worker tries to accept and lift, then it is refused with a message
    with clock.frozen_at(AT), pytest.raises(ApplicationError) as refused:
        services.clearance_accept(task=task, actor=worker, reason="看着没问题")
    assert refused.value.message

    # and nothing changed: the popup is held, the resident got no decision SMS
    assert _state(task) == (ClearanceTask.State.CONFIRMED, PopupCase.State.ACTIVE)
    assert not task.events.filter(kind=ClearanceEvent.Kind.LIFTED).exists()
    assert not SmsMessage.objects.filter(purpose="clearance_lifted").exists()


def test_accept_during_a_high_risk_red_measure_is_refused(task, worker):
    # given a high-risk outcome: centralised observation (red) for 7 days
    with clock.frozen_at(AT):
        services.clearance_investigate(task=task, actor=worker, outcome="high_risk", reason="密接",
                                       confirm_high_risk=True)
    assert health_code_at(task.resident, AT + dt.timedelta(days=2)).color == "red"

    # when the worker tries to accept on day 3, then it is refused
    with pytest.raises(ApplicationError):
        services.clearance_accept(task=task, actor=worker, reason="提前解除", at=AT + dt.timedelta(days=2))
    assert _state(task) == (ClearanceTask.State.MEASURES, PopupCase.State.UNDER_REVIEW)

    # and once the order has ended and a negative from day 7 is on record, the sweep lifts it
    negative_result(task.resident, cst(2022, 11, 16, 9))
    assert services.clearance_measures_sweep(at=cst(2022, 11, 17, 1)) == 1
    assert _state(task) == (ClearanceTask.State.LIFTED, PopupCase.State.LIFTED)


def test_nothing_found_lifts_after_letter_and_negative_test(task, worker, client, sms_outbox,
                                                          django_capture_on_commit_callbacks):
    # given the investigation found nothing: commitment letter + one negative test
    with clock.frozen_at(AT), django_capture_on_commit_callbacks(execute=True):
        services.clearance_investigate(task=task, actor=worker, outcome="nothing_found", reason="信令误判")
    # the worker cannot lift it before the letter and the test
    with pytest.raises(ApplicationError):
        services.clearance_accept(task=task, actor=worker, reason="同意", at=AT + dt.timedelta(hours=1))

    # when the resident signs the letter and a negative result sampled after the investigation arrives
    token = token_in(sms_outbox.outbox[-1])
    with clock.frozen_at(AT + dt.timedelta(hours=1)):
        assert client.post(f"/clearance/r/{token}/", {"signature": task.resident.name, "agree": "on"}).status_code == 200
    negative_result(task.resident, AT + dt.timedelta(hours=2))

    # then the measures sweep lifts it (actor "clearance")
    assert services.clearance_measures_sweep(at=AT + dt.timedelta(hours=9)) == 1
    assert _state(task) == (ClearanceTask.State.LIFTED, PopupCase.State.LIFTED)
    assert task.events.get(kind=ClearanceEvent.Kind.LIFTED).actor_label == "clearance"


def test_worker_may_accept_once_the_measures_are_complete(task, worker):
    with clock.frozen_at(AT):
        services.clearance_investigate(task=task, actor=worker, outcome="listed_area", reason="途经涉疫地区")
    for sampled in (cst(2022, 11, 10, 12), cst(2022, 11, 11, 9), cst(2022, 11, 13, 9), cst(2022, 11, 16, 9)):
        negative_result(task.resident, sampled)
    # day 7 over and its negative on record: the worker's accept is the same lift the sweep would do
    services.clearance_accept(task=task, actor=worker, reason="四次核酸均阴性", at=cst(2022, 11, 17, 8))
    assert _state(task) == (ClearanceTask.State.LIFTED, PopupCase.State.LIFTED)


def test_task_page_hides_accept_for_popup_3_and_offers_the_investigation(task, worker, client):
    client.force_login(worker)
    page = client.get(reverse("clearance:task", args=[task.pk]))
    body = page.content.decode()
    assert 'id="form-accept"' not in body
    assert 'id="accept-refused"' in body and escape(page.context["accept_refusal"]) in body
    assert 'id="form-investigate"' in body
    # reject and ask for information stay available
    assert 'id="form-reject"' in body and 'id="form-info"' in body


def test_posting_accept_anyway_is_refused_with_the_message(task, worker, client):
    client.force_login(worker)
    response = client.post(reverse("clearance:task-action", args=[task.pk, "accept"]), {"reason": "同意"}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [response.context["accept_refusal"]]
    assert _state(task) == (ClearanceTask.State.OPEN, PopupCase.State.ACTIVE)


def test_api_refuses_accept_and_says_why_in_the_detail(task, worker):
    api = APIClient()
    api.force_authenticate(worker)
    detail = api.get(reverse("clearance:api-detail", args=[task.pk])).json()
    assert detail["accept_refusal"]
    response = api.post(reverse("clearance:api-decision", args=[task.pk]), {"decision": "accept", "reason": "同意"},
                        format="json")
    assert response.status_code == 400 and response.json()["detail"] == detail["accept_refusal"]
    assert _state(task) == (ClearanceTask.State.OPEN, PopupCase.State.ACTIVE)


def test_appeal_reporting_a_popup_3_it_was_not_linked_to_goes_through_the_investigation(client, sms_outbox):
    # given a phone appeal reporting popup 3, never linked, and the resident's one open popup 3
    resident = ResidentFactory()
    popup = PopupCaseFactory(resident=resident, popup_type=3, source="venue")
    appeal = RoutedAppealFactory(resident=resident, popup=None, popup_type_claimed=3, channel=Appeal.Channel.PHONE)
    task = services.clearance_open_for_appeal(appeal=appeal)
    worker = WorkerFactory(communities=[task.community])
    client.force_login(worker)

    # then the page offers the investigation, not accept
    body = client.get(reverse("clearance:task", args=[task.pk])).content.decode()
    assert 'id="accept-refused"' in body and 'id="form-investigate"' in body
    with pytest.raises(ApplicationError):
        services.clearance_accept(task=task, actor=worker, reason="同意")

    # and recording the investigation links the popup to the task and starts the measures
    services.clearance_investigate(task=task, actor=worker, outcome="nothing_found", reason="误判")
    task.refresh_from_db()
    assert task.popup == popup and task.state == ClearanceTask.State.MEASURES
    assert task.events.filter(kind=ClearanceEvent.Kind.POPUP_LINKED).count() == 1


def test_checkpoint_route_still_lifts_popup_3_when_letter_and_tests_are_done(client, sms_outbox,
                                                                            django_capture_on_commit_callbacks):
    # given a resident with popup 3 pre-approved at a checkpoint ("three days, two tests")
    resident, popup, worker, response, task = checkpoint_preapproval(
        client, django_capture_on_commit_callbacks, at=AT, reason="京港澳高速杜家坎检查站，社区同意接收")
    assert response.status_code == 302
    # the worker cannot lift it before the letter and the tests
    with pytest.raises(ApplicationError):
        services.clearance_accept(task=task, actor=worker, reason="同意", at=AT + dt.timedelta(hours=1))

    # when the letter is signed and both tests are negative
    token = token_in(sms_outbox.outbox[-1])
    client.logout()
    with clock.frozen_at(AT + dt.timedelta(hours=1)):
        assert client.post(f"/clearance/r/{token}/", {"signature": resident.name, "agree": "on"}).status_code == 200
    negative_result(resident, AT + dt.timedelta(hours=2))
    negative_result(resident, cst(2022, 11, 12, 9))

    # then the measures sweep lifts it after day 3
    assert services.clearance_measures_sweep(at=cst(2022, 11, 13, 0, 5)) == 1
    popup.refresh_from_db()
    assert popup.state == PopupCase.State.LIFTED


def test_popup_1_is_accepted_and_lifted_as_before(client):
    popup = PopupCaseFactory(popup_type=1)
    task = ClearanceTaskFactory(resident=popup.resident, popup=popup, origin="misattribution")
    worker = WorkerFactory(communities=[task.community])
    client.force_login(worker)
    assert 'id="form-accept"' in client.get(reverse("clearance:task", args=[task.pk])).content.decode()
    services.clearance_accept(task=task, actor=worker, reason="旧手机号误判")
    assert _state(task) == (ClearanceTask.State.LIFTED, PopupCase.State.LIFTED)


def test_popup_4_is_not_lifted_by_a_community_decision(client):
    # the policy in force gives a community no say over popup 4 (a negative result lifts it)
    popup = PopupCaseFactory(popup_type=4, source="engine")
    task = ClearanceTaskFactory(resident=popup.resident, popup=popup, origin="in_city")
    worker = WorkerFactory(communities=[task.community])
    client.force_login(worker)
    assert 'id="accept-refused"' in client.get(reverse("clearance:task", args=[task.pk])).content.decode()
    with pytest.raises(ApplicationError):
        services.clearance_accept(task=task, actor=worker, reason="同意")
    assert _state(task) == (ClearanceTask.State.OPEN, PopupCase.State.ACTIVE)
