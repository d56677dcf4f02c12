"""The queue's next pages are found through the ordering's index: the cursor is one row
comparison `(priority, created_at, id) > (...)`, which PostgreSQL applies as an index condition
(deep pages cost what the first page costs), and the real page stays within six queries."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from appeals.filters import AppealFilter
from appeals.models import Appeal
from appeals.selectors import ORDERINGS, _after, seek_page
from tests.factories.appeals import AppealFactory
from tests.plans import explain

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("ordering,index", [(o, ORDERINGS[o][0]) for o in ORDERINGS])
def test_cursor_is_an_index_condition_of_the_orderings_index(operator, ordering, index):
    # given open appeals and a cursor taken from one of them
    appeals = [AppealFactory(created_at=timezone.now() - dt.timedelta(minutes=i)) for i in range(3)]
    _index, fields = ORDERINGS[ordering]
    values = [getattr(appeals[1], f.lstrip("-")) for f in fields]
    qs = AppealFilter({"queue": "open"}, queryset=Appeal.objects.all(), user=operator).qs
    # when the next page's query is planned
    plan = explain(qs.order_by(*fields).filter(_after(fields, values))[:51], sort=False)
    # then the cursor is an index condition on the ordering's index, not a filter over rows (the
    # priority ordering's twin over every appeal, appeal_seek_priority_all_idx, has the same keys;
    # on a table of three rows either may be the cheaper, as PostgreSQL 18 found)
    used = next(line for line in plan.splitlines() if "Index" in line and " using " in line)
    assert used.split(" using ")[1].split()[0] in {index, index.replace("_idx", "_all_idx")}, plan
    cond = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert "ROW(" in cond and ("created_at" in cond or "sla_due_at" in cond)
    assert not any("Filter" in line and "ROW(" in line for line in plan.splitlines())


@pytest.mark.parametrize("ordering", list(ORDERINGS))
def test_row_comparison_pages_match_the_full_ordering(ordering):
    # given appeals sharing priorities and creation times (ties broken by id)
    moment = timezone.now() - dt.timedelta(hours=1)
    for i in range(9):
        AppealFactory(priority=1 + i % 3, created_at=moment - dt.timedelta(minutes=i % 2))
    _index, fields = ORDERINGS[ordering]
    qs = Appeal.objects.filter(status__in=Appeal.OPEN_STATUSES)
    expected = list(qs.filter(sla_due_at__isnull=False).order_by(*fields).values_list("pk", flat=True))
    # when walked two rows at a time
    seen, cursor = [], None
    while True:
        page = seek_page(qs, ordering=ordering, cursor=cursor, size=2)
        seen += [a.pk for a in page.rows]
        cursor = page.next_cursor
        if not cursor:
            break
    # then every row comes once, in the ordering's order
    assert seen == expected


def test_deep_page_of_the_real_queue_takes_six_queries_or_fewer(client, operator, django_assert_max_num_queries):
    # given more than one page of open appeals
    for i in range(60):
        AppealFactory(created_at=timezone.now() - dt.timedelta(minutes=i), priority=1 + i % 3)
    client.force_login(operator)
    first = client.get(reverse("appeals:queue"))
    after = first.context["page"].next_cursor
    assert after
    # when the operator opens the next page
    with django_assert_max_num_queries(6):
        response = client.get(reverse("appeals:queue"), {"after": after})
    # then it shows the remaining rows
    assert len(response.context["page"].rows) == 10
