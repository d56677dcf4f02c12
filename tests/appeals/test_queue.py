"""The console queue: queues, filters, seek pagination with a capped count, audited person search."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from appeals import selectors
from appeals.models import Appeal
from communities import pii
from communities.models import PersonalDataAccess, User
from tests.factories import CommunityFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def refs(response):
    return {a.reference for a in response.context["page"].rows}


def test_emergencies_lead_the_default_queue(client, operator):
    normal = AppealFactory(created_at=timezone.now() - dt.timedelta(hours=5))
    emergency = AppealFactory(priority=1, category="emergency_medical")
    client.force_login(operator)
    rows = client.get(reverse("appeals:queue")).context["page"].rows
    assert [a.pk for a in rows] == [emergency.pk, normal.pk]


def test_named_queues(client, operator):
    mine = AppealFactory(assigned_to=operator, status=Appeal.Status.IN_PROGRESS)
    new = AppealFactory()
    emergency = AppealFactory(priority=1)
    soon = AppealFactory(sla_due_at=timezone.now() + dt.timedelta(minutes=20))
    closed = AppealFactory(status=Appeal.Status.CLOSED)
    client.force_login(operator)
    get = lambda q: refs(client.get(reverse("appeals:queue"), {"queue": q}))  # noqa: E731
    assert get("mine") == {mine.reference}
    assert get("new") == {new.reference, emergency.reference, soon.reference}
    assert get("emergency") == {emergency.reference}
    assert get("sla_soon") == {soon.reference}
    assert get("closed") == {closed.reference}


def test_filters_by_reference_category_popup_type_community_district_and_dates(client, operator):
    community = CommunityFactory(name="劲松社区")
    a = AppealFactory(category="stranded", popup_type_claimed=1, community=community)
    b = AppealFactory(category="old_phone", popup_type_claimed=3, created_at=timezone.now() - dt.timedelta(days=10))
    client.force_login(operator)
    url = reverse("appeals:queue")
    assert refs(client.get(url, {"reference": a.reference.lower()})) == {a.reference}
    assert refs(client.get(url, {"category": "old_phone"})) == {b.reference}
    assert refs(client.get(url, {"popup_type": "1"})) == {a.reference}
    assert refs(client.get(url, {"community": "劲松"})) == {a.reference}
    assert refs(client.get(url, {"district": community.street.district.pk})) >= {a.reference}
    since = (timezone.localdate() - dt.timedelta(days=2)).isoformat()
    assert refs(client.get(url, {"filed_after": since})) == {a.reference}


def test_seek_pagination_walks_every_row_once_without_offset(client, operator, django_assert_max_num_queries):
    created = [AppealFactory(created_at=timezone.now() - dt.timedelta(minutes=i)) for i in range(7)]
    client.force_login(operator)
    seen, after = [], None
    for _ in range(5):
        params = {"order": "oldest"} | ({"after": after} if after else {})
        with django_assert_max_num_queries(12):
            response = client.get(reverse("appeals:queue"), params)
        page = response.context["page"]
        seen += [a.pk for a in page.rows]
        after = page.next_cursor
        if not after:
            break
    assert seen == [a.pk for a in sorted(created, key=lambda a: (a.created_at, a.pk))]


def test_page_size_and_capped_count(operator, monkeypatch):
    monkeypatch.setattr(selectors, "COUNT_CAP", 3)
    for _ in range(5):
        AppealFactory()
    page = selectors.seek_page(Appeal.objects.all(), size=2)
    assert len(page.rows) == 2 and page.next_cursor and page.count == 3 and page.count_capped


def test_queue_query_uses_an_index_not_a_sort_of_everything():
    from django.db import connection

    qs = Appeal.objects.filter(status__in=Appeal.OPEN_STATUSES).order_by("priority", "created_at", "id")[:51]
    with connection.cursor() as cursor:
        # A tiny test table is cheaper to sort; forbid the sort to see which index serves the order.
        cursor.execute("SET enable_sort = off")
        plan = qs.explain()
        cursor.execute("SET enable_sort = on")
    assert "appeal_seek_priority_idx" in plan


def test_exact_id_search_goes_through_the_hash_and_is_audited(client, operator):
    resident = ResidentFactory()
    mine = AppealFactory(resident=resident)
    AppealFactory()
    client.force_login(operator)
    response = client.post(reverse("appeals:queue"), {"id_number": resident.reveal_id_number()})
    rows = response.context["search_rows"]
    assert [a.pk for a in rows] == [mine.pk]
    log = PersonalDataAccess.objects.get(actor=operator)
    assert log.action == PersonalDataAccess.Action.LOOKUP and log.resident == resident
    assert resident.reveal_id_number() not in log.context


def test_phone_search_finds_contact_phone(client, operator):
    appeal = AppealFactory(contact_phone_hash=pii.phone_hash("13912345678"))
    client.force_login(operator)
    response = client.post(reverse("appeals:queue"), {"phone": "139 1234 5678"})
    assert [a.pk for a in response.context["search_rows"]] == [appeal.pk]


def test_id_search_is_a_post_only_form(client, operator):
    client.force_login(operator)
    page = client.get(reverse("appeals:queue")).content.decode()
    assert 'method="post" class="filters"' in page and 'name="id_number"' in page


def test_community_worker_sees_only_their_communities(client):
    community = CommunityFactory()
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[community])
    visible = AppealFactory(routed_community=community, status=Appeal.Status.ROUTED)
    hidden = AppealFactory()
    client.force_login(worker)
    got = refs(client.get(reverse("appeals:queue"), {"queue": "all"}))
    assert visible.reference in got and hidden.reference not in got


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("appeals:queue"))
    assert response.status_code == 302 and "login" in response.url
