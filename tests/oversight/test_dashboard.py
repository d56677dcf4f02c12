"""The supervisor's dashboard: figures from the summary tables, charts' numbers as tables, links
to the lists behind each number, filters by district and popup type."""

import datetime as dt
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from appeals.models import Appeal
from appeals.oversight import selectors, services
from appeals.oversight.models import DurationBin, OpenPopupFigure, TrendPoint
from communities.models import User
from healthkit.models import PopupCase, PopupEvent
from tests.factories import (
    CommunityFactory,
    DistrictFactory,
    PopupCaseFactory,
    ResidentFactory,
    StreetFactory,
    UserFactory,
)
from tests.factories.appeals import AppealFactory
from tests.factories.clearance import ClearanceTaskFactory

pytestmark = pytest.mark.django_db


def _lifted(resident, *, hours: float, person=None, popup_type=4):
    now = timezone.now()
    case = PopupCaseFactory(resident=resident, popup_type=popup_type, source=PopupCase.Source.ENGINE,
                            raised_at=now - dt.timedelta(hours=hours), state=PopupCase.State.LIFTED, lifted_at=now,
                            dedupe_key=f"k{hours}")
    PopupEvent.objects.create(case=case, kind=PopupEvent.Kind.LIFTED, actor=person, at=now,
                              actor_label="" if person else "engine")
    return case


@pytest.fixture
def city():
    chaoyang = DistrictFactory(code="110105", name="朝阳区")
    haidian = DistrictFactory(code="110108", name="海淀区")
    east = CommunityFactory(street=StreetFactory(district=chaoyang))
    west = CommunityFactory(street=StreetFactory(district=haidian, code="110108001"))
    return {"chaoyang": chaoyang, "haidian": haidian, "east": east, "west": west}


@pytest.fixture
def supervisor(client):
    user = UserFactory(role=User.Role.SUPERVISOR)
    client.force_login(user)
    return user


def test_refresh_counts_open_popups_appeals_tasks_by_place(city, supervisor):
    # given two open popups in Chaoyang (types 3 and 4), one in Haidian, one lifted
    a, b, c = (ResidentFactory(community=city["east"]), ResidentFactory(community=city["east"]),
               ResidentFactory(community=city["west"]))
    PopupCaseFactory(resident=a, popup_type=3)
    PopupCaseFactory(resident=b, popup_type=4, source=PopupCase.Source.ENGINE)
    c_popup = PopupCaseFactory(resident=c, popup_type=3)
    worker = UserFactory(role=User.Role.SUPERVISOR)
    _lifted(a, hours=10, person=worker)
    # an open appeal past its SLA, escalated, folded twice; a task overdue
    AppealFactory(resident=a, sla_due_at=timezone.now() - dt.timedelta(hours=1), escalated_at=timezone.now(),
                  repeat_count=2, channel=Appeal.Channel.PHONE)
    ClearanceTaskFactory(resident=c, popup=c_popup, sla_due_at=timezone.now() - dt.timedelta(hours=2))

    # when the beat job refreshes
    services.summary_refresh()

    # then the figures are right, city-wide and per district
    f = selectors.DashboardFilters.default()
    popups = selectors.open_popups(f)
    assert popups["total"] == 3
    assert popups["by_place"] == {city["chaoyang"].pk: 2, city["haidian"].pk: 1}
    chaoyang = selectors.DashboardFilters(date_from=f.date_from, date_to=f.date_to, district=city["chaoyang"])
    assert selectors.open_popups(chaoyang)["by_type"] == {3: 1, 4: 1}
    type4 = selectors.DashboardFilters(date_from=f.date_from, date_to=f.date_to, popup_type=4)
    assert selectors.open_popups(type4)["total"] == 1
    appeals = selectors.open_appeals(f)
    assert (appeals["total"], appeals["breached"], appeals["escalated"], appeals["repeats"]) == (1, 1, 1, 2)
    assert appeals["by_channel"] == {"phone": 1}
    assert selectors.open_tasks(f) == {"total": 1, "overdue": 1, "by_state": {"open": 1}}
    assert selectors.lifts_split(f) == {TrendPoint.Metric.LIFTED_PERSON: 1}


def test_refresh_is_idempotent(city):
    PopupCaseFactory(resident=ResidentFactory(community=city["east"]))
    services.summary_refresh()
    services.summary_refresh()
    assert sum(OpenPopupFigure.objects.values_list("n", flat=True)) == 1


def test_median_and_p90_from_the_duration_bins(city):
    resident = ResidentFactory(community=city["east"])
    for hours in (1, 2, 3, 4, 100):
        _lifted(resident, hours=hours)
    services.summary_refresh()
    rows = [r for r in selectors.durations(selectors.DashboardFilters.default())
            if r.measure == DurationBin.Measure.POPUP_LIFT and r.group == {"all": None}]
    assert rows[0].n == 5
    # within a bin's width (±10 %) of the exact median (3 h) and p90 (100 h)
    assert 0.9 * 180 <= rows[0].p50 <= 1.1 * 180
    assert 0.9 * 6000 <= rows[0].p90 <= 1.1 * 6000


def test_page_shows_figures_tables_and_drilldown_links(city, supervisor, client):
    resident = ResidentFactory(community=city["east"])
    PopupCaseFactory(resident=resident, popup_type=3)
    AppealFactory(resident=resident, category=Appeal.Category.STRANDED)
    services.summary_refresh()

    response = client.get(reverse("oversight:dashboard"), {"district": city["chaoyang"].pk})

    html = response.content.decode()
    # chart data travels as a JSON data block (CSP: no inline script) with the same numbers as the tables
    charts = json.loads(re.search(r'<script id="dashboard-charts" type="application/json">(.*?)</script>',
                                  html, re.S).group(1))
    by_type = next(c for c in charts if c["id"] == "popups-type")
    assert by_type["datasets"][0]["data"] == [1]
    assert 'id="popups-type-table"' in html and 'aria-describedby="popups-type-table"' in html
    assert "<script>" not in html  # no inline script
    # the open-popups figure links to the popup list with the district carried over
    assert f'/console/popups/?district={city["chaoyang"].pk}&amp;state=open' in html
    assert "/console/appeals/?district=" in html and "category=stranded" in html
    assert "chart.umd.min.js" in html


def test_drilldown_popup_list_shows_what_the_figure_counted(city, supervisor, client):
    PopupCaseFactory(resident=ResidentFactory(community=city["east"]), popup_type=3)
    PopupCaseFactory(resident=ResidentFactory(community=city["west"]), popup_type=3)
    response = client.get(reverse("console-popups"), {"district": city["chaoyang"].pk, "state": "open"})
    assert response.content.decode().count('data-state="active"') == 1


def test_dashboard_is_for_supervisors_only(client, city):
    client.force_login(UserFactory(role=User.Role.OPERATOR))
    assert client.get(reverse("oversight:dashboard")).status_code == 403
    client.force_login(UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[city["east"]]))
    assert client.get(reverse("oversight:dashboard")).status_code == 403


def test_page_before_any_refresh_says_so(supervisor, client):
    html = client.get(reverse("oversight:dashboard"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "have not been computed yet" in html


def test_one_community_is_counted_live_and_a_district_by_community(city):
    other = CommunityFactory(street=city["east"].street)
    PopupCaseFactory(resident=ResidentFactory(community=city["east"]), popup_type=3)
    PopupCaseFactory(resident=ResidentFactory(community=other), popup_type=4, source=PopupCase.Source.ENGINE)
    AppealFactory(resident=ResidentFactory(community=city["east"]))
    services.summary_refresh()
    base = selectors.DashboardFilters.default()
    one = selectors.DashboardFilters(date_from=base.date_from, date_to=base.date_to, community=city["east"])
    assert selectors.open_popups(one)["by_type"] == {3: 1}
    assert selectors.open_appeals(one)["total"] == 1
    district = selectors.DashboardFilters(date_from=base.date_from, date_to=base.date_to, district=city["chaoyang"])
    assert selectors.open_popups(district)["by_place"] == {city["east"].pk: 1, other.pk: 1}


def test_incremental_refresh_keeps_old_history_and_adds_new(city):
    resident = ResidentFactory(community=city["east"])
    old = timezone.now() - dt.timedelta(days=20)
    PopupCaseFactory(resident=resident, popup_type=4, raised_at=old, source=PopupCase.Source.ENGINE)
    services.summary_refresh()
    PopupCaseFactory(resident=resident, popup_type=3)
    services.summary_refresh()  # rewrites only the last few days
    days = selectors.trend_days(selectors.DashboardFilters.default())
    assert sum(days["series"][TrendPoint.Metric.POPUPS_RAISED]) == 2


@pytest.mark.parametrize("role", [User.Role.SUPERVISOR, User.Role.ADMINISTRATOR])
def test_every_link_on_the_dashboard_opens_for_its_viewer(city, client, role):
    # given a viewer (a supervisor has no admin permissions) and a dashboard with every figure
    administrator = role == User.Role.ADMINISTRATOR
    client.force_login(UserFactory(role=role, is_superuser=administrator, is_staff=administrator))
    services.summary_refresh()
    html = client.get(reverse("oversight:dashboard")).content.decode()
    hrefs = {h.replace("&amp;", "&") for h in re.findall(r'href="(/[^"]*)"', html)}
    # then each link it shows answers 200 to that viewer (never a 403 from the admin)
    statuses = {h: client.get(h).status_code for h in sorted(hrefs)
                if not h.startswith(("/static/", "/i18n/", "/accounts/logout/"))}
    assert statuses and all(code == 200 for code in statuses.values()), statuses
    admin_links = [h for h in statuses if h.startswith("/admin/healthkit/")]
    assert bool(admin_links) == (role == User.Role.ADMINISTRATOR)
