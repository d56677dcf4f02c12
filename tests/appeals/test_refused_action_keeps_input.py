"""A refused console action leads back to the page it was sent from (a reload sends nothing
again) with the reason once, in the person's language, and what they typed kept for that page
(an operator's route or close reason, a worker's rejection reason): put back into the form, or
shown to copy when the record no longer offers the form (closed meanwhile)."""

import pytest
from django.urls import reverse

from appeals import services
from appeals.clearance import services as clearance_services
from appeals.clearance.models import ClearanceTask
from appeals.models import Appeal
from communities.models import User
from tests.concurrency import page_seen, signed_in
from tests.factories import CommunityFactory, ResidentFactory, UserFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db

REASON = "居民已返京三天，请社区核实 — typed by hand"


def _back(client, response, page: str) -> str:
    """The page the refusal led back to, checked to be `page`."""
    assert response.status_code == 302 and response["Location"].split("?")[0] == page
    return client.get(response["Location"]).content.decode()


def _unregistered_appeal() -> Appeal:
    """An appeal whose filer's ID number is not in the registry: routing it is refused."""
    resident = ResidentFactory()
    appeal, _folded = services.appeal_file(resident=resident, category="correction")
    Appeal.objects.filter(pk=appeal.pk).update(resident=None, filer_unconfirmed=True)
    return Appeal.objects.get(pk=appeal.pk)


def test_a_refused_route_shows_the_ticket_again_with_the_reason_typed_and_why_in_english():
    appeal = _unregistered_appeal()
    client = signed_in(UserFactory(role=User.Role.OPERATOR))
    ticket = reverse("appeals:ticket", args=[appeal.pk])

    response = client.post(reverse("appeals:ticket-action", args=[appeal.pk, "route"]), {
        "community_code": CommunityFactory().code, "reason": REASON, **page_seen(client, ticket)})

    page = _back(client, response, ticket)
    assert 'id="unsent-form"' in page and REASON in page
    assert page.count("The ID number given is not in the registry. Check who the filer is") == 1
    assert Appeal.objects.get(pk=appeal.pk).status == Appeal.Status.NEW


def test_the_refusal_is_in_the_operator_s_language():
    appeal = _unregistered_appeal()
    client = signed_in(UserFactory(role=User.Role.OPERATOR))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"

    response = client.post(reverse("appeals:ticket-action", args=[appeal.pk, "route"]), {
        "community_code": CommunityFactory().code, "reason": REASON})

    page = _back(client, response, reverse("appeals:ticket", args=[appeal.pk]))
    assert REASON in page and 'lang="zh-hans"' in page
    assert "The ID number given is not in the registry" not in page


def test_a_stale_close_keeps_the_reason_typed():
    appeal = _unregistered_appeal()
    client = signed_in(UserFactory(role=User.Role.OPERATOR))
    seen = page_seen(client, reverse("appeals:ticket", args=[appeal.pk]))
    services.appeal_assign(appeal=appeal, assignee=UserFactory(role=User.Role.OPERATOR),
                           actor=UserFactory(role=User.Role.OPERATOR))  # someone else acts first

    response = client.post(reverse("appeals:ticket-action", args=[appeal.pk, "close"]),
                           {"reason": REASON, "outcome": "rejected", **seen})

    assert REASON in _back(client, response, reverse("appeals:ticket", args=[appeal.pk]))
    assert Appeal.objects.get(pk=appeal.pk).is_open


def test_a_worker_s_refused_rejection_keeps_the_reason_even_when_the_task_was_withdrawn():
    appeal = RoutedAppealFactory()
    task = clearance_services.clearance_open_for_appeal(appeal=appeal)
    client = signed_in(WorkerFactory(communities=[task.community]))
    seen = page_seen(client, reverse("clearance:task", args=[task.pk]))
    services.appeal_close(appeal=appeal, actor=UserFactory(role=User.Role.OPERATOR), reason="重复", outcome="duplicate")

    response = client.post(reverse("clearance:task-action", args=[task.pk, "reject"]), {
        "reason": REASON, "next_step": ClearanceTask.NextStep.WAIT_7_DAYS, **seen})

    page = _back(client, response, reverse("clearance:task", args=[task.pk]))
    assert 'id="unsent-form"' in page and REASON in page
    assert page.count("withdrew this task") == 1


def test_a_worker_s_incomplete_form_keeps_what_was_typed():
    task = ClearanceTaskFactory()
    client = signed_in(WorkerFactory(communities=[task.community]))

    response = client.post(reverse("clearance:task-action", args=[task.pk, "reject"]), {"reason": REASON})

    assert REASON in _back(client, response, reverse("clearance:task", args=[task.pk]))
    assert ClearanceTask.objects.get(pk=task.pk).state == ClearanceTask.State.OPEN
