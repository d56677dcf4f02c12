"""An appeal whose ID number is not (yet) in the registry has no resident row: the dashboard
still counts it (open appeals, trends, time to decision) by the community it was filed with."""

import datetime as dt

import pytest
from django.utils import timezone

from appeals.models import Appeal
from appeals.oversight import selectors, services
from appeals.oversight.models import TrendPoint
from tests.factories import CommunityFactory, DistrictFactory, StreetFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def test_appeals_without_a_registry_record_are_counted():
    district = DistrictFactory(code="110105", name="朝阳区")
    community = CommunityFactory(street=StreetFactory(district=district))
    AppealFactory(resident=None, community=community, channel=Appeal.Channel.PHONE)
    now = timezone.now()
    AppealFactory(resident=None, community=community, status=Appeal.Status.CLOSED, outcome="rejected",
                  created_at=now - dt.timedelta(hours=5), closed_at=now)

    services.summary_refresh(full=True)

    f = selectors.DashboardFilters.default()
    appeals = selectors.open_appeals(f)
    assert appeals["total"] == 1 and appeals["by_channel"] == {"phone": 1}
    in_district = selectors.DashboardFilters(date_from=f.date_from, date_to=f.date_to, district=district)
    assert selectors.open_appeals(in_district)["total"] == 1
    filed = TrendPoint.objects.filter(metric=TrendPoint.Metric.APPEALS_FILED, grain="day")
    assert sum(filed.values_list("n", flat=True)) == 2
