"""Two community workers on the same task at the same moment, and the same task form sent twice:
one action happens, the other person is told the task changed (healthkit.concurrency); one SMS,
one call in the log, one decision."""

import pytest
from django.urls import reverse

from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceTask
from healthkit.models import SmsMessage
from tests.concurrency import at_once, page_seen, post_messages, signed_in
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHANGED = "This record changed after you opened the page"


@pytest.fixture
def task_and_workers():
    appeal = RoutedAppealFactory()
    task = services.clearance_open_for_appeal(appeal=appeal)
    workers = [WorkerFactory(communities=[appeal.routed_community]) for _ in range(2)]
    return task, workers


def _page(task: ClearanceTask) -> str:
    return reverse("clearance:task", args=[task.pk])


def _action(task: ClearanceTask, action: str) -> str:
    return reverse("clearance:task-action", args=[task.pk, action])


def test_resend_pressed_twice_at_once_sends_one_link(task_and_workers):
    task, (worker, _other) = task_and_workers
    client = signed_in(worker)
    form = page_seen(client, _page(task))
    before = SmsMessage.objects.count()

    results = at_once(*(lambda: post_messages(client, _action(task, "resend"), form),) * 2)

    flat = [m for messages in results for m in messages]
    assert sum(m.startswith(CHANGED) for m in flat) == 1, flat
    assert SmsMessage.objects.count() - before == 1


def test_call_logged_twice_at_once_is_one_call(task_and_workers):
    task, (worker, _other) = task_and_workers
    client = signed_in(worker)
    form = {**page_seen(client, _page(task)), "direction": "outbound", "outcome": "no_answer", "note": "未接通"}

    at_once(*(lambda: post_messages(client, _action(task, "call"), form),) * 2)

    assert task.events.filter(kind=ClearanceEvent.Kind.CALL).count() == 1


def test_two_workers_rejecting_and_asking_at_once_one_wins(task_and_workers):
    task, workers = task_and_workers
    clients = [signed_in(w) for w in workers]
    forms = [page_seen(c, _page(task)) for c in clients]
    posts = [(_action(task, "reject"), {"reason": "行程不符", "next_step": ClearanceTask.NextStep.values[0]}),
             (_action(task, "info"), {"question": "请说明11月3日的行程"})]

    results = at_once(*(lambda i=i: post_messages(clients[i], posts[i][0], {**forms[i], **posts[i][1]})
                        for i in range(2)))

    flat = [m for messages in results for m in messages]

    def refused(message: str) -> bool:
        # the loser is told the page is stale, or (the winner closed the task) who closed it
        return message.startswith(CHANGED) or "was not recorded" in message

    assert sum(refused(m) for m in flat) == 1, flat
    task.refresh_from_db()
    winner = 0 if not refused(results[0][0]) else 1
    assert task.state == [ClearanceTask.State.REJECTED, ClearanceTask.State.INFO_REQUESTED][winner]
    decided = task.events.filter(kind__in=[ClearanceEvent.Kind.REJECTED, ClearanceEvent.Kind.INFO_REQUESTED])
    assert decided.count() == 1


def test_every_action_form_on_the_task_page_carries_the_version(task_and_workers):
    task, (worker, _other) = task_and_workers
    page = signed_in(worker).get(_page(task)).content.decode()
    prefix = f'action="/console/clearance/{task.pk}/'
    forms = [chunk.split("</form>")[0] for chunk in page.split("<form")[1:] if prefix in chunk.split(">")[0]]
    actions = [form.split(prefix, 1)[1].split("/", 1)[0] for form in forms]
    assert {"resend", "call", "reject", "info"} <= set(actions)
    assert all('name="seen"' in form for form, action in zip(forms, actions, strict=True) if action != "reveal")
