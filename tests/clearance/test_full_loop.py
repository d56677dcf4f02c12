"""The whole loop: an operator routes an appeal → the resident gets a link SMS, confirms → the
community worker accepts → the popup is lifted through the engine (ticket-sync outbox), the
appeal is closed with the outcome, and the resident gets a second SMS."""

import pytest
from django.urls import reverse

from appeals.clearance.models import ClearanceEvent, ClearanceTask
from appeals.models import Appeal
from appeals.services import appeal_route
from communities.models import User
from healthkit.models import OutboxRecord, PopupCase, SmsMessage
from tests.clearance.helpers import confirmation_post, token_in
from tests.factories import PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def test_routed_appeal_to_lifted_popup_and_both_sms(client, sms_outbox, django_capture_on_commit_callbacks):
    # given a resident with an upstream popup 1 (e.g. a phone number once used elsewhere) who
    # filed an appeal, and an operator and a community worker (popup 3 goes through the
    # investigation instead: test_type_3_lifts_only_through_investigation)
    resident = ResidentFactory()
    popup = PopupCaseFactory(resident=resident, popup_type=1)
    appeal = RoutedAppealFactory(resident=resident, popup=popup, status=Appeal.Status.IN_PROGRESS,
                                 routed_community=None, routed_at=None)
    operator = UserFactory(role=User.Role.OPERATOR)
    worker = WorkerFactory(communities=[resident.community])

    # when the operator routes it to the community
    with django_capture_on_commit_callbacks(execute=True):
        appeal_route(appeal=appeal, community=resident.community, actor=operator, reason="属地社区核实")

    # then a task is open and the resident has a link
    task = ClearanceTask.objects.get(appeal=appeal)
    assert task.state == ClearanceTask.State.OPEN
    assert len(sms_outbox.outbox) == 1
    token = token_in(sms_outbox.outbox[0])

    # when the resident opens the link and confirms
    url = reverse("clearance:link", args=[token])
    assert client.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, confirmation_post())
    assert response.status_code == 200
    task.refresh_from_db()
    popup.refresh_from_db()
    assert task.state == ClearanceTask.State.CONFIRMED
    assert task.confirmation["return_date"] == "2022-11-20"
    assert task.contact_phone_masked == "139****5678"
    assert popup.state == PopupCase.State.UNDER_REVIEW

    # when the worker accepts the return
    client.force_login(worker)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("clearance:task-action", args=[task.pk, "accept"]),
                               {"reason": "核实无风险，同意返京"})
    assert response.status_code == 302

    # then the popup is lifted by the engine's service, with the ticket-sync outbox record
    popup.refresh_from_db()
    task.refresh_from_db()
    appeal.refresh_from_db()
    assert popup.state == PopupCase.State.LIFTED
    assert OutboxRecord.objects.filter(case=popup, kind=OutboxRecord.Kind.LIFTED).count() == 1
    assert task.state == ClearanceTask.State.LIFTED and task.decided_by == worker
    assert task.events.filter(kind=ClearanceEvent.Kind.LIFTED, actor=worker, reason="核实无风险，同意返京").exists()
    assert appeal.status == Appeal.Status.CLOSED and appeal.outcome == "lifted"
    # and the resident got both messages, the decision to the phone they confirmed
    assert len(sms_outbox.outbox) == 2
    assert sms_outbox.outbox[1].phone == "13912345678"
    assert SmsMessage.objects.filter(purpose="clearance_lifted", state=SmsMessage.State.SENT).count() == 1


def test_deciding_twice_is_refused_and_sends_nothing_more(client, sms_outbox, django_capture_on_commit_callbacks):
    appeal = RoutedAppealFactory(popup__popup_type=1)
    worker = WorkerFactory(communities=[appeal.routed_community])
    from appeals.clearance.services import clearance_open_for_appeal

    with django_capture_on_commit_callbacks(execute=True):
        task = clearance_open_for_appeal(appeal=appeal)
    client.force_login(worker)
    url = reverse("clearance:task-action", args=[task.pk, "accept"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"reason": "同意"})
        client.post(url, {"reason": "同意"})
    assert task.events.filter(kind=ClearanceEvent.Kind.LIFTED).count() == 1
    assert len(sms_outbox.outbox) == 2


def test_reject_tells_next_step_and_returns_popup_to_active(client, sms_outbox, django_capture_on_commit_callbacks):
    appeal = RoutedAppealFactory()
    worker = WorkerFactory(communities=[appeal.routed_community])
    from appeals.clearance.services import clearance_open_for_appeal

    with django_capture_on_commit_callbacks(execute=True):
        task = clearance_open_for_appeal(appeal=appeal)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("clearance:link", args=[token_in(sms_outbox.outbox[0])]), confirmation_post())
    client.force_login(worker)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("clearance:task-action", args=[task.pk, "reject"]),
                    {"reason": "所在地7日内有本土病例。", "next_step": "wait_7_days"})
    task.refresh_from_db()
    appeal.refresh_from_db()
    appeal.popup.refresh_from_db()
    assert task.state == ClearanceTask.State.REJECTED
    assert appeal.popup.state == PopupCase.State.ACTIVE
    assert appeal.status == Appeal.Status.CLOSED and appeal.outcome == "rejected"
    assert len(sms_outbox.outbox) == 2
    # one full stop in the resident's language, whether or not the worker typed one
    assert "原因：所在地7日内有本土病例。下一步：" in sms_outbox.outbox[1].body


def test_ask_for_information_sends_question_and_a_fresh_link(client, sms_outbox, django_capture_on_commit_callbacks):
    appeal = RoutedAppealFactory()
    worker = WorkerFactory(communities=[appeal.routed_community])
    from appeals.clearance.services import clearance_open_for_appeal

    with django_capture_on_commit_callbacks(execute=True):
        task = clearance_open_for_appeal(appeal=appeal)
    first = token_in(sms_outbox.outbox[0])
    client.force_login(worker)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("clearance:task-action", args=[task.pk, "info"]), {"question": "请说明返京车次"})
    task.refresh_from_db()
    assert task.state == ClearanceTask.State.INFO_REQUESTED
    # one SMS with the question and the fresh link
    assert len(sms_outbox.outbox) == 2
    assert "请说明返京车次" in sms_outbox.outbox[1].body
    fresh = token_in(sms_outbox.outbox[1])
    client.logout()
    # the first link was replaced; the fresh one shows the question
    assert client.get(reverse("clearance:link", args=[first])).status_code == 410
    page = client.get(reverse("clearance:link", args=[fresh]))
    assert page.status_code == 200 and "请说明返京车次" in page.content.decode()


def test_resend_replaces_the_unused_link(client, sms_outbox, django_capture_on_commit_callbacks):
    appeal = RoutedAppealFactory()
    worker = WorkerFactory(communities=[appeal.routed_community])
    from appeals.clearance.services import clearance_open_for_appeal

    with django_capture_on_commit_callbacks(execute=True):
        task = clearance_open_for_appeal(appeal=appeal)
    client.force_login(worker)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("clearance:task-action", args=[task.pk, "resend"])).status_code == 302
    old, new = token_in(sms_outbox.outbox[0]), token_in(sms_outbox.outbox[1])
    client.logout()
    assert client.get(reverse("clearance:link", args=[old])).status_code == 410
    assert client.get(reverse("clearance:link", args=[new])).status_code == 200


def test_sms_is_in_the_residents_language_whatever_the_workers_console_language(
        client, sms_outbox, django_capture_on_commit_callbacks):
    appeal = RoutedAppealFactory(popup__popup_type=1)
    worker = WorkerFactory(communities=[appeal.routed_community])
    from appeals.clearance.services import clearance_open_for_appeal

    with django_capture_on_commit_callbacks(execute=True):
        task = clearance_open_for_appeal(appeal=appeal)
    client.force_login(worker)
    client.cookies["django_language"] = "en"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("clearance:task-action", args=[task.pk, "accept"]), {"reason": "ok"},
                    HTTP_ACCEPT_LANGUAGE="en")
    decision = sms_outbox.outbox[-1].body
    assert "Your community" not in decision
    assert any("\u4e00" <= ch <= "\u9fff" for ch in decision.replace(task.community.name, ""))
