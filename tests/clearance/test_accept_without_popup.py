"""Accepting a task opened without a popup (appeal by phone or Open311, "a popup you don't
show"): the decision links the resident's one open popup of the type the appeal reports and
lifts it; with no popup to lift it says so, and never claims a lift that did not happen."""

import pytest
from django.urls import reverse

from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceTask
from appeals.models import Appeal
from healthkit.errors import ApplicationError
from healthkit.models import OutboxRecord, PopupCase, PopupEvent, SmsMessage
from tests.factories import PopupCaseFactory, ResidentFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def _phone_appeal_task(*, claimed: int | None, resident=None):
    """An appeal taken by phone, never linked to a popup, routed to the community: its task."""
    resident = resident or ResidentFactory()
    appeal = RoutedAppealFactory(resident=resident, popup=None, popup_type_claimed=claimed,
                                 channel=Appeal.Channel.PHONE)
    task = services.clearance_open_for_appeal(appeal=appeal)
    assert task.popup_id is None
    return task


def test_accept_links_the_one_open_popup_of_the_reported_type_and_lifts_it(sms_outbox,
                                                                          django_capture_on_commit_callbacks):
    # given a phone appeal reporting popup 1, and the resident's one open popup 1
    resident = ResidentFactory()
    popup = PopupCaseFactory(resident=resident, popup_type=1)
    PopupCaseFactory(resident=resident, popup_type=4, source="engine")  # another type: not this appeal's
    task = _phone_appeal_task(claimed=1, resident=resident)
    worker = WorkerFactory(communities=[task.community])

    # when the worker accepts
    with django_capture_on_commit_callbacks(execute=True):
        task = services.clearance_accept(task=task, actor=worker, reason="核实为旧手机号误判")

    # then the popup is recorded on the task (with an event) and lifted through the engine
    task.refresh_from_db()
    popup.refresh_from_db()
    assert task.popup == popup and task.state == ClearanceTask.State.LIFTED
    linked = task.events.get(kind=ClearanceEvent.Kind.POPUP_LINKED)
    assert linked.actor == worker and linked.data["popup"] == popup.pk and linked.data["popup_type"] == 1
    assert popup.state == PopupCase.State.LIFTED
    assert OutboxRecord.objects.filter(case=popup, kind=OutboxRecord.Kind.LIFTED).count() == 1
    assert PopupCase.objects.get(resident=resident, popup_type=4).state == PopupCase.State.ACTIVE
    # and the appeal is closed as lifted, the resident told it was lifted
    task.appeal.refresh_from_db()
    assert task.appeal.outcome == "lifted"
    assert SmsMessage.objects.filter(purpose="clearance_lifted").count() == 1


def test_accept_with_no_popup_on_record_says_so_and_lifts_nothing(sms_outbox, django_capture_on_commit_callbacks):
    # given a phone appeal reporting popup 1 for a resident with no popup 1 on record (only a popup 3)
    resident = ResidentFactory()
    other = PopupCaseFactory(resident=resident, popup_type=3)
    task = _phone_appeal_task(claimed=1, resident=resident)
    worker = WorkerFactory(communities=[task.community])
    sms_outbox.outbox.clear()

    # when the worker accepts
    with django_capture_on_commit_callbacks(execute=True):
        task = services.clearance_accept(task=task, actor=worker, reason="社区同意接收")

    # then the task is "accepted", not "lifted", and nothing was lifted
    task.refresh_from_db()
    assert task.state == ClearanceTask.State.ACCEPTED and task.popup_id is None
    assert task.closed_at is not None and task.decided_by == worker
    assert task.events.filter(kind=ClearanceEvent.Kind.ACCEPTED).count() == 1
    assert not task.events.filter(kind=ClearanceEvent.Kind.LIFTED).exists()
    other.refresh_from_db()
    assert other.state == PopupCase.State.ACTIVE
    assert not PopupEvent.objects.filter(kind=PopupEvent.Kind.LIFTED).exists()
    assert not OutboxRecord.objects.filter(kind=OutboxRecord.Kind.LIFTED).exists()
    # and the appeal's outcome is not "lifted"
    task.appeal.refresh_from_db()
    assert task.appeal.status == Appeal.Status.CLOSED and task.appeal.outcome == "no_popup"
    # and the SMS says the return was accepted and to call 12345 if a popup still shows
    assert not SmsMessage.objects.filter(purpose="clearance_lifted").exists()
    (sms,) = sms_outbox.outbox
    assert SmsMessage.objects.get(purpose="clearance_accepted").idempotency_key == f"clearance:{task.pk}:decision"
    assert "12345" in sms.body and task.community.name in sms.body


def test_several_popups_of_the_reported_type_link_none(sms_outbox):
    # the decision cannot tell which one the resident means: none is linked or lifted
    resident = ResidentFactory()
    first = PopupCaseFactory(resident=resident, popup_type=1, dedupe_key="a")
    second = PopupCaseFactory(resident=resident, popup_type=1, dedupe_key="b")
    task = _phone_appeal_task(claimed=1, resident=resident)

    task = services.clearance_accept(task=task, actor=WorkerFactory(communities=[task.community]), reason="同意")

    assert task.state == ClearanceTask.State.ACCEPTED and task.popup_id is None
    assert {p.state for p in PopupCase.objects.filter(pk__in=[first.pk, second.pk])} == {PopupCase.State.ACTIVE}


def test_appeal_without_a_reported_type_links_nothing():
    resident = ResidentFactory()
    popup = PopupCaseFactory(resident=resident, popup_type=1)
    task = _phone_appeal_task(claimed=None, resident=resident)

    task = services.clearance_accept(task=task, actor=WorkerFactory(communities=[task.community]), reason="同意")

    popup.refresh_from_db()
    assert task.state == ClearanceTask.State.ACCEPTED and popup.state == PopupCase.State.ACTIVE


def test_a_reported_popup_handled_on_another_task_is_refused_with_its_reference(sms_outbox):
    # given the reported popup already has its own open task (e.g. opened by the popup sweep)
    resident = ResidentFactory()
    popup = PopupCaseFactory(resident=resident, popup_type=1)
    sweep_task = ClearanceTaskFactory(resident=resident, popup=popup, origin="misattribution")
    task = _phone_appeal_task(claimed=1, resident=resident)
    sent = len(sms_outbox.outbox)

    # when the worker accepts the appeal's task, it is refused, naming the task to decide
    with pytest.raises(ApplicationError) as refused:
        services.clearance_accept(task=task, actor=WorkerFactory(communities=[task.community]), reason="同意")
    assert sweep_task.reference in refused.value.message

    # and nothing changed
    task.refresh_from_db()
    popup.refresh_from_db()
    assert task.state == ClearanceTask.State.OPEN and task.popup_id is None
    assert popup.state == PopupCase.State.ACTIVE and len(sms_outbox.outbox) == sent


def test_task_page_says_what_accepting_will_do(client):
    # a task with nothing to lift offers "accept (nothing to lift)"; one whose appeal reports a
    # popup on record says it will be linked
    nothing = _phone_appeal_task(claimed=1)
    resident = ResidentFactory(community=nothing.community)
    PopupCaseFactory(resident=resident, popup_type=1)
    claimed = _phone_appeal_task(claimed=1, resident=resident)
    client.force_login(WorkerFactory(communities=[nothing.community]))

    page = client.get(reverse("clearance:task", args=[nothing.pk])).content.decode()
    assert 'id="nothing-to-lift"' in page and 'id="form-accept"' in page

    page = client.get(reverse("clearance:task", args=[claimed.pk])).content.decode()
    assert 'id="claimed-popup"' in page and 'id="nothing-to-lift"' not in page


def test_console_confirms_the_truth_after_accepting_nothing(client):
    task = _phone_appeal_task(claimed=1)
    client.force_login(WorkerFactory(communities=[task.community]))

    response = client.post(reverse("clearance:task-action", args=[task.pk, "accept"]), {"reason": "同意"},
                           follow=True)

    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1 and "12345" in messages[0]
    task.refresh_from_db()
    assert task.state == ClearanceTask.State.ACCEPTED


def test_resident_status_shows_the_acceptance():
    from appeals.clearance.selectors import clearance_progress_for_appeal

    task = _phone_appeal_task(claimed=1)
    services.clearance_accept(task=task, actor=WorkerFactory(communities=[task.community]), reason="同意")
    progress = clearance_progress_for_appeal(task.appeal)
    assert [e.kind for e in progress.events][-1] == ClearanceEvent.Kind.ACCEPTED
