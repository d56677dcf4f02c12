"""One community chosen on the dashboard: its trends (per day and per hour), its lifts and its
times (median / p90) are its own, not its district's."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from appeals.models import Appeal
from appeals.oversight import selectors, services
from appeals.oversight.models import DurationBin, TrendPoint
from communities.models import User
from healthkit.models import PopupCase, PopupEvent
from tests.factories import CommunityFactory, PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def _lifted(resident, *, hours: float, key: str, person=None, popup_type: int = 4) -> PopupCase:
    now = timezone.now()
    case = PopupCaseFactory(resident=resident, popup_type=popup_type, source=PopupCase.Source.ENGINE,
                            raised_at=now - dt.timedelta(hours=hours), state=PopupCase.State.LIFTED, lifted_at=now,
                            dedupe_key=key)
    PopupEvent.objects.create(case=case, kind=PopupEvent.Kind.LIFTED, actor=person, at=now,
                              actor_label="" if person else "engine")
    return case


@pytest.fixture
def city_one_district():
    east = CommunityFactory()
    other = CommunityFactory(street=east.street)  # same street, same district
    # east: two quick automatic lifts (1 h); other: three slow lifts by a person (100 h)
    for i in range(2):
        _lifted(ResidentFactory(community=east), hours=1, key=f"east{i}")
    worker = UserFactory(role=User.Role.SUPERVISOR)
    for i in range(3):
        _lifted(ResidentFactory(community=other), hours=100, key=f"other{i}", person=worker, popup_type=3)
    # appeals: one filed with east and closed after 2 h; two filed with other (one routed to east)
    now = timezone.now()
    AppealFactory(resident=ResidentFactory(community=east), status=Appeal.Status.CLOSED,
                  closed_at=now, created_at=now - dt.timedelta(hours=2))
    AppealFactory(resident=ResidentFactory(community=other))
    AppealFactory(resident=ResidentFactory(community=other), routed_community=east)
    services.summary_refresh()
    return {"east": east, "other": other, "district": east.street.district}


def _filters(**kwargs) -> selectors.DashboardFilters:
    base = selectors.DashboardFilters.default()
    return selectors.DashboardFilters(date_from=base.date_from, date_to=base.date_to, **kwargs)


def _popup_lift(times: list) -> selectors.TimeRow:
    return next(r for r in times if r.measure == DurationBin.Measure.POPUP_LIFT and r.group == {"all": None})


def test_community_trends_are_its_own(city_one_district):
    east, district = city_one_district["east"], city_one_district["district"]
    whole = selectors.trend_days(_filters(district=district))["series"]
    one = selectors.trend_days(_filters(community=east))["series"]
    # the district counts both communities; the community only its own
    assert sum(whole[TrendPoint.Metric.LIFTED_AUTO]) + sum(whole[TrendPoint.Metric.LIFTED_PERSON]) == 5
    assert sum(one[TrendPoint.Metric.LIFTED_AUTO]) == 2
    assert sum(one[TrendPoint.Metric.LIFTED_PERSON]) == 0
    assert sum(whole[TrendPoint.Metric.APPEALS_FILED]) == 3
    # filed with east, and routed to east (the same place the summary gives an appeal)
    assert sum(one[TrendPoint.Metric.APPEALS_FILED]) == 2
    assert sum(one[TrendPoint.Metric.APPEALS_CLOSED]) == 1
    hours = selectors.trend_hours(_filters(community=east))["series"]
    assert sum(hours[TrendPoint.Metric.POPUPS_RAISED]) == 2  # raised an hour ago (the others 100 h ago)
    assert selectors.lifts_split(_filters(community=east)) == {TrendPoint.Metric.LIFTED_AUTO: 2}
    # a popup type the community has none of
    typed = selectors.trend_days(_filters(community=east, popup_type=3))["series"]
    assert sum(typed[TrendPoint.Metric.LIFTED_AUTO]) == 0


def test_community_times_are_its_own(city_one_district):
    east, other, district = city_one_district["east"], city_one_district["other"], city_one_district["district"]
    whole = _popup_lift(selectors.durations(_filters(district=district)))
    assert whole.n == 5
    assert whole.p50 >= 0.9 * 100 * 60  # most of the district's lifts took 100 h
    mine = _popup_lift(selectors.durations(_filters(community=east)))
    assert mine.n == 2
    assert 0.9 * 60 <= mine.p50 <= 1.1 * 60 and 0.9 * 60 <= mine.p90 <= 1.1 * 60
    theirs = _popup_lift(selectors.durations(_filters(community=other)))
    assert theirs.n == 3 and theirs.p50 >= 0.9 * 100 * 60
    decisions = [r for r in selectors.durations(_filters(community=east))
                 if r.measure == DurationBin.Measure.APPEAL_DECISION]
    assert decisions[0].n == 1 and 0.9 * 120 <= decisions[0].p50 <= 1.1 * 120
    assert not [r for r in selectors.durations(_filters(community=other))
                if r.measure == DurationBin.Measure.APPEAL_DECISION]


def test_page_with_a_community_shows_its_times(city_one_district, client):
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    east = city_one_district["east"]
    html = client.get(reverse("oversight:dashboard"), {"community": east.code},
                      HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "counted from its own records" in html
    assert "100.0 h" not in html and "4.2 days" not in html  # the other community's lifts are not shown
