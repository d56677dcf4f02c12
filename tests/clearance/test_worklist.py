"""The worklist: by urgency (emergencies, then SLA), filters, counts per state, CSV."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from appeals.clearance import selectors
from appeals.clearance.models import ClearanceTask
from tests.factories import CommunityFactory, ResidentFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def community():
    return CommunityFactory()


@pytest.fixture
def worker(community):
    return WorkerFactory(communities=[community])


def _task(community, **kwargs):
    return ClearanceTaskFactory(resident=ResidentFactory(community=community), **kwargs)


def test_ordered_by_priority_then_sla(community, worker):
    now = timezone.now()
    normal_soon = _task(community, sla_due_at=now + dt.timedelta(hours=1))
    normal_late = _task(community, sla_due_at=now + dt.timedelta(hours=20))
    emergency = _task(community, priority=1, sla_due_at=now + dt.timedelta(hours=3))
    stranded = _task(community, priority=2, sla_due_at=now + dt.timedelta(hours=30),
                     origin=ClearanceTask.Origin.STRANDED)
    assert list(selectors.worklist(user=worker)) == [emergency, stranded, normal_soon, normal_late]


def test_filters_and_counts(client, community, worker):
    now = timezone.now()
    overdue = _task(community, sla_due_at=now - dt.timedelta(hours=1))
    stranded = _task(community, origin=ClearanceTask.Origin.STRANDED, priority=2)
    done = _task(community)
    ClearanceTask.objects.filter(pk=done.pk).update(state="lifted", closed_at=now)
    f = selectors.WorklistFilters
    assert list(selectors.worklist(user=worker, filters=f(overdue=True))) == [overdue]
    assert list(selectors.worklist(user=worker, filters=f(origin="stranded"))) == [stranded]
    assert list(selectors.worklist(user=worker, filters=f(state="lifted"))) == [done]
    assert list(selectors.worklist(user=worker, filters=f(reference=stranded.reference))) == [stranded]
    counts = selectors.state_counts(user=worker)
    assert counts["open"] == 2 and counts["lifted"] == 1 and counts["rejected"] == 0

    client.force_login(worker)
    body = client.get(reverse("clearance:worklist"), {"origin": "stranded"}).content.decode()
    assert stranded.reference in body and overdue.reference not in body


def test_list_page_query_count_does_not_grow_with_tasks(client, community, worker, django_assert_max_num_queries):
    for _ in range(30):
        _task(community)
    client.force_login(worker)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("clearance:worklist"))
    assert response.status_code == 200


def test_csv_follows_the_filters(client, community, worker):
    a = _task(community, origin=ClearanceTask.Origin.STRANDED)
    b = _task(community)
    client.force_login(worker)
    text = b"".join(client.get(reverse("clearance:worklist-csv"), {"origin": "stranded"}).streaming_content).decode()
    assert a.reference in text and b.reference not in text


def test_task_page_shows_why_and_masked_resident(client, community, worker):
    task = _task(community)
    client.force_login(worker)
    body = client.get(reverse("clearance:task", args=[task.pk])).content.decode()
    assert task.resident.masked in body
    assert task.resident.reveal_id_number() not in body
    assert f'data-popup="{task.popup_id}"' in body


@pytest.mark.parametrize("calls", [1, 20])
def test_task_page_query_count_is_bounded(client, worker, django_assert_max_num_queries, calls):
    # given a routed appeal's task with its link and SMS, the hotline's and the community's calls,
    # a signed letter and refused signatures, its resident registered in another community
    from appeals.clearance import services
    from appeals.clearance.models import ClearanceEvent
    from appeals.models import AppealContact

    community = worker.communities.get()
    appeal = RoutedAppealFactory(resident__community=CommunityFactory(), routed_community=community)
    task = services.clearance_open_for_appeal(appeal=appeal)
    now = timezone.now()
    for n in range(calls):
        AppealContact.objects.create(appeal=appeal, operator=worker, direction="outbound", outcome="reached",
                                     note=f"call {n}", at=now)
        ClearanceEvent.objects.create(task=task, kind=ClearanceEvent.Kind.CALL, actor=worker, reason=f"call {n}",
                                      data={"direction": "outbound", "outcome": "reached"}, at=now)
        ClearanceEvent.objects.create(task=task, kind=ClearanceEvent.Kind.SIGNATURE_REFUSED, at=now)
    ClearanceEvent.objects.create(task=task, kind=ClearanceEvent.Kind.COMMITMENT_SIGNED, at=now,
                                  data={"version": "v1", "letter_sha256": "ab"})
    client.force_login(worker)
    # when the worker opens its page, then the queries do not grow with its history: the events
    # are read once (calls, letter, reason from them), the registered community with its street
    # and district (23 queries for this task before, whatever its history)
    with django_assert_max_num_queries(16):
        response = client.get(reverse("clearance:task", args=[task.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert f"call {calls - 1}" in body and str(appeal.resident.community) in body
