"""A refused console action shows the page again with the form as the person filled it in and
the reason in their language (400), instead of redirecting and losing what they typed (an
operator's route or close reason, a worker's rejection reason). When the record no longer offers
the form (closed meanwhile), what they typed is shown to copy."""

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

    page = response.content.decode()
    assert response.status_code == 400
    assert REASON in page
    assert "The ID number given is not in the registry" in page
    assert Appeal.objects.get(pk=appeal.pk).status == Appeal.Status.NEW


def test_the_refusal_is_in_the_operator_s_language():
    appeal = _unregistered_appeal()
    client = signed_in(UserFactory(role=User.Role.OPERATOR))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"

    response = client.post(reverse("appeals:ticket-action", args=[appeal.pk, "route"]), {
        "community_code": CommunityFactory().code, "reason": REASON})

    assert response.status_code == 400 and REASON in response.content.decode()
    assert "The ID number given is not in the registry" not in response.content.decode()


def test_a_stale_close_keeps_the_reason_typed():
    appeal = _unregistered_appeal()
    client = signed_in(UserFactory(role=User.Role.OPERATOR))
    seen = page_seen(client, reverse("appeals:ticket", args=[appeal.pk]))
    services.appeal_assign(appeal=appeal, assignee=UserFactory(role=User.Role.OPERATOR),
                           actor=UserFactory(role=User.Role.OPERATOR))  # someone else acts first

    response = client.post(reverse("appeals:ticket-action", args=[appeal.pk, "close"]),
                           {"reason": REASON, "outcome": "rejected", **seen})

    assert response.status_code == 400 and REASON in response.content.decode()
    assert Appeal.objects.get(pk=appeal.pk).is_open


def test_a_worker_s_refused_rejection_keeps_the_reason_even_when_the_task_was_withdrawn():
    appeal = RoutedAppealFactory()
    task = clearance_services.clearance_open_for_appeal(appeal=appeal)
    client = signed_in(WorkerFactory(communities=[task.community]))
    seen = page_seen(client, reverse("clearance:task", args=[task.pk]))
    services.appeal_close(appeal=appeal, actor=UserFactory(role=User.Role.OPERATOR), reason="重复", outcome="duplicate")

    response = client.post(reverse("clearance:task-action", args=[task.pk, "reject"]), {
        "reason": REASON, "next_step": ClearanceTask.NextStep.WAIT_7_DAYS, **seen})

    page = response.content.decode()
    assert response.status_code == 400
    assert 'id="unsent"' in page and REASON in page
    assert "withdrew this task" in page


def test_a_worker_s_incomplete_form_keeps_what_was_typed():
    task = ClearanceTaskFactory()
    client = signed_in(WorkerFactory(communities=[task.community]))

    response = client.post(reverse("clearance:task-action", args=[task.pk, "reject"]), {"reason": REASON})

    assert response.status_code == 400 and REASON in response.content.decode()
    assert ClearanceTask.objects.get(pk=task.pk).state == ClearanceTask.State.OPEN
