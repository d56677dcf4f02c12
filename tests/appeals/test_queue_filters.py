"""The queue's filters at scale: each one (and a combination) keeps the real page within six
queries deep in the queue; a district or community is an index condition on the appeal's
community columns (no join through street and district); a day is a range of the column itself;
a queue small enough to count is sorted from its own rows and pages exactly like the index walk."""

import datetime as dt

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from appeals import selectors
from appeals.filters import AppealFilter
from appeals.models import Appeal
from appeals.views_console import QueueView
from tests.factories import CommunityFactory, DistrictFactory, StreetFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def places():
    """Two districts, a community in each."""
    here = CommunityFactory(street=StreetFactory(district=DistrictFactory(code="110105", name="朝阳区")))
    there = CommunityFactory(street=StreetFactory(district=DistrictFactory(code="110108", name="海淀区")))
    return here, there


FILTERS = [
    {"category": "stranded"}, {"priority": "1"}, {"channel": "phone"}, {"popup_type": "3"},
    {"status": "new"}, {"escalated": "true"}, {"repeated": "true"}, {"stranded": "false"},
    {"filed_after": "2020-01-01"}, {"filed_before": f"{dt.date.today().year + 1}-12-31"}, {"closed_after": "2020-01-01"},
    {"reference": "NOPE"},
]


@pytest.mark.parametrize("extra", [*FILTERS, "district", "community", "district+community+assigned_to+type"])
def test_every_filter_keeps_the_page_within_six_queries_deep_in(
        client, enrolled_operator, places, extra, monkeypatch, django_assert_max_num_queries):
    # given appeals in both districts and pages of 2 rows
    here, there = places
    now = timezone.now()
    for i in range(8):
        AppealFactory(community=here if i % 2 else there, category="stranded", channel="phone", popup_type_claimed=3,
                      priority=1 + i % 3, repeat_count=i % 2, assigned_to=enrolled_operator,
                      created_at=now - dt.timedelta(minutes=i))
    monkeypatch.setattr(QueueView, "page_size", 2)
    if extra == "district":
        extra = {"district": str(here.street.district_id)}
    elif extra == "community":
        extra = {"community": here.code}
    elif isinstance(extra, str):
        extra = {"district": str(here.street.district_id), "community": here.name[:4],
                 "assigned_to": str(enrolled_operator.pk), "popup_type": "3"}
    url = reverse("appeals:queue")
    for ordering in selectors.ORDERINGS:
        params = {"queue": "open", "order": ordering, **extra}
        first = client.get(url, params)
        assert first.status_code == 200 and first.context["filter"].is_valid(), first.context["filter"].errors
        after = first.context["page"].next_cursor
        # when the operator follows the cursor (or reloads the only page)
        with django_assert_max_num_queries(6):
            response = client.get(url, {**params, "after": after} if after else params)
        # then the page is within the budget
        assert response.status_code == 200


def test_district_and_community_find_named_and_routed_appeals(operator, places):
    # given an appeal naming each community, one routed from there to here, one with no community
    here, there = places
    named = AppealFactory(community=here)
    routed = AppealFactory(community=there, routed_community=here, status=Appeal.Status.ROUTED)
    elsewhere = AppealFactory(community=there)
    AppealFactory(community=None)

    def shown(params):
        qs = AppealFilter({"queue": "open", **params}, queryset=Appeal.objects.all(), user=operator).qs
        return set(qs.values_list("pk", flat=True))

    # when filtered by the district, the community's code or a part of its name
    # then both the named and the routed appeal are found, nothing else
    assert shown({"district": str(here.street.district_id)}) == {named.pk, routed.pk}
    assert shown({"community": here.code}) == {named.pk, routed.pk}
    assert shown({"community": here.name}) == {named.pk, routed.pk}
    assert shown({"district": str(there.street.district_id)}) == {routed.pk, elsewhere.pk}
    assert shown({"community": "no such community"}) == set()


def test_a_day_filter_holds_the_whole_local_day(operator):
    # given appeals filed just before, at and at the end of a local day, and just after it
    tz = timezone.get_current_timezone()
    day = dt.date(2022, 11, 20)
    midnight = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    before, start, end, after = (AppealFactory(created_at=midnight + delta) for delta in (
        dt.timedelta(seconds=-1), dt.timedelta(0), dt.timedelta(hours=23, minutes=59, seconds=59),
        dt.timedelta(days=1)))

    def shown(params):
        qs = AppealFilter({"queue": "all", **params}, queryset=Appeal.objects.all(), user=operator).qs
        return set(qs.values_list("pk", flat=True))

    # when filtered from and until that day
    # then the day is whole, in the current time zone, and nothing of the days around it
    assert shown({"filed_after": "2022-11-20", "filed_before": "2022-11-20"}) == {start.pk, end.pk}
    assert before.pk not in shown({"filed_after": "2022-11-20"})
    assert after.pk not in shown({"filed_before": "2022-11-20"})


def test_day_filter_compares_the_column_not_its_date(operator):
    # given the queue filtered by days filed and closed
    qs = AppealFilter({"queue": "all", "filed_after": "2022-11-20", "closed_before": "2022-11-21"},
                      queryset=Appeal.objects.all(), user=operator).qs
    # then the SQL compares created_at and closed_at themselves (an index range), no conversion
    sql = str(qs.query)
    assert "AT TIME ZONE" not in sql and "::date" not in sql.lower()


@pytest.mark.parametrize("ordering", list(selectors.ORDERINGS))
@pytest.mark.parametrize("cap", [2, 1000])
def test_small_and_large_queues_page_the_same(ordering, cap, monkeypatch):
    # given appeals sharing priorities and times, and a count cap below or above the queue
    moment = timezone.now() - dt.timedelta(hours=1)
    for i in range(9):
        AppealFactory(priority=1 + i % 3, created_at=moment - dt.timedelta(minutes=i % 2),
                      sla_due_at=None if i == 4 else moment + dt.timedelta(minutes=i % 3))
    monkeypatch.setattr(selectors, "COUNT_CAP", cap)
    _index, fields = selectors.ORDERINGS[ordering]
    qs = Appeal.objects.filter(status__in=Appeal.OPEN_STATUSES)
    reachable = qs.filter(sla_due_at__isnull=False) if ordering == "sla" else qs
    expected = list(reachable.order_by(*fields).values_list("pk", flat=True))
    # when walked two rows at a time (from the counted rows when the cap holds the queue, else the index)
    seen, cursor = [], None
    while True:
        page = selectors.seek_page(qs, ordering=ordering, cursor=cursor, size=2)
        seen += [row.pk for row in page.rows]
        cursor = page.next_cursor
        if not cursor:
            break
    # then every row comes once, in the ordering's order
    assert seen == expected


def test_district_compares_the_appeals_own_community_columns(operator, places):
    # given the open queue filtered by a district
    here, _there = places
    AppealFactory(community=here)
    qs = AppealFilter({"queue": "open", "district": str(here.street.district_id)},
                      queryset=Appeal.objects.all(), user=operator).qs
    # then its SQL compares the appeal's community columns with the district's ids (each an index
    # condition at scale), and never joins through street to district (a filter over every row)
    sql = str(qs.query)
    assert '"community_id" IN (' in sql and '"routed_community_id" IN (' in sql
    assert "communities_street" not in sql and "district_id" not in sql


def test_a_status_outside_the_queue_shows_nothing_without_asking(operator, django_assert_num_queries):
    # given a new and a closed appeal
    new = AppealFactory(status=Appeal.Status.NEW)
    AppealFactory(status=Appeal.Status.CLOSED, closed_at=timezone.now())

    def queue(params):
        return AppealFilter(params, queryset=Appeal.objects.all(), user=operator).qs

    def page(params):
        return selectors.seek_page(queue(params))

    # when the open queue is filtered by "closed", then nothing, and no appeal is read for it
    contradiction = queue({"queue": "open", "status": "closed"})
    with django_assert_num_queries(0):
        assert selectors.seek_page(contradiction).rows == []
    # while a status inside the queue filters it
    assert [row.pk for row in page({"queue": "open", "status": "new"}).rows] == [new.pk]
    assert len(page({"queue": "all", "status": "closed"}).rows) == 1


def test_statistics_tell_the_planner_which_places_see_which_popup_types():
    # given the migrated database, then the appeal's communities and popup type have joint statistics
    with connection.cursor() as cursor:
        cursor.execute("SELECT stxkind FROM pg_statistic_ext WHERE stxname = 'appeal_place_type_stats'")
        assert cursor.fetchone() is not None
