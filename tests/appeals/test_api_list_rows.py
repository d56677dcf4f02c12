"""The appeals list is built from .values() by plain functions, its times formatted by PostgreSQL:
its rows must be exactly what the documented serializer (AppealSummarySerializer, the schema)
gives for the same appeals, in any time zone."""

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from django.db.models import DateTimeField, Value
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework import serializers
from rest_framework.test import APIClient

from appeals.api import AppealSummarySerializer
from appeals.models import Appeal
from appeals.selectors import IsoDateTime
from communities.models import Resident
from tests.factories import CommunityFactory, ResidentFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def _varied(operator):
    routed = CommunityFactory(name="劲松社区")
    forgotten = ResidentFactory()
    Resident.objects.filter(pk=forgotten.pk).update(id_hash=Resident.FORGOTTEN_PREFIX + "x")
    return [
        AppealFactory(),
        AppealFactory(claimed_masked="王* 1101**********12", popup_type_claimed=3, priority=1),
        AppealFactory(assigned_to=operator, routed_community=routed, status=Appeal.Status.ROUTED,
                      repeat_count=2, sla_breached_at=timezone.now()),
        AppealFactory(status=Appeal.Status.CLOSED, closed_at=timezone.now(), outcome="corrected",
                      sla_due_at=None, created_at=dt.datetime(2022, 11, 20, 1, 2, 3, 456789, tzinfo=dt.UTC)),
        AppealFactory(resident=forgotten),
        # every optional field set, the times with and without microseconds
        AppealFactory(assigned_to=operator, routed_community=routed, popup_type_claimed=1, repeat_count=1,
                      status=Appeal.Status.CLOSED, outcome="corrected",
                      created_at=dt.datetime(2022, 7, 1, 16, 0, tzinfo=dt.UTC),
                      sla_due_at=dt.datetime(2022, 7, 2, 16, 0, 0, 1, tzinfo=dt.UTC),
                      sla_breached_at=dt.datetime(2022, 7, 3, 3, 4, 5, tzinfo=dt.UTC),
                      closed_at=dt.datetime(2022, 7, 4, 23, 59, 59, 999999, tzinfo=dt.UTC)),
        # Beijing daylight saving (1986-1991) and the local mean time before 1901 (+08:05:43)
        AppealFactory(created_at=dt.datetime(1988, 6, 1, 12, tzinfo=dt.UTC),
                      sla_due_at=dt.datetime(1900, 1, 1, tzinfo=dt.UTC), sla_breached_at=None, closed_at=None),
    ]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_list_rows_equal_the_documented_serializer(operator, language):
    # given appeals covering every optional field (nulls, routed, assigned, closed, forgotten)
    _varied(operator)
    api = APIClient(HTTP_ACCEPT_LANGUAGE=language)
    api.force_authenticate(operator)
    # when the list is read
    rows = api.get(reverse("appeals:api-list"), {"page_size": 200}).json()["results"]
    # then each row is what the serializer gives, field for field (times in the same zone and format)
    with timezone.override(timezone.get_default_timezone()):
        appeals = Appeal.objects.select_related("resident", "community", "routed_community", "assigned_to")
        with translation.override(language):
            expected = AppealSummarySerializer(appeals.order_by("-created_at", "-id"), many=True).data
    assert rows == [dict(row) for row in expected]
    times = {row["created_at"]: row for row in rows}
    assert "2022-11-20T09:02:03.456789+08:00" in times
    assert times["2022-07-02T00:00:00+08:00"]["closed_at"] == "2022-07-05T07:59:59.999999+08:00"
    assert times["1988-06-01T21:00:00+09:00"]["sla_due_at"] == "1900-01-01T08:05:43+08:05:43"


ZONES = ["Asia/Shanghai", "UTC", "America/New_York", "Asia/Kathmandu", "America/St_Johns", "Africa/Monrovia"]


@pytest.mark.parametrize("zone", [ZoneInfo(name) for name in ZONES]
                         + [dt.UTC, dt.timezone(dt.timedelta(hours=-3, minutes=-30))], ids=str)
def test_list_rows_equal_the_serializer_in_any_time_zone(operator, zone):
    # given appeals with every optional time null and set
    _varied(operator)
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(operator)
    # when the list is read in another current time zone
    with timezone.override(zone):
        rows = api.get(reverse("appeals:api-list"), {"page_size": 200}).json()["results"]
        appeals = Appeal.objects.select_related("resident", "community", "routed_community", "assigned_to")
        with translation.override("en"):
            expected = AppealSummarySerializer(appeals.order_by("-created_at", "-id"), many=True).data
    # then its times are the serializer's, in that zone
    assert rows == [dict(row) for row in expected]


@pytest.mark.parametrize("zone", [ZoneInfo(name) for name in ZONES] + [dt.timezone(dt.timedelta(hours=5, minutes=45))],
                         ids=str)
def test_postgresql_formats_times_as_drf_does(zone):
    # given times across daylight saving changes and historical offsets, some on a whole second
    rng = random.Random(15)
    start = dt.datetime(1890, 1, 1, tzinfo=dt.UTC)
    times = [start + dt.timedelta(seconds=rng.randrange(150 * 365 * 86400), microseconds=rng.choice([0, 1, 999_999]))
             for _ in range(300)]
    AppealFactory()
    # when PostgreSQL formats them (in a query over one row)
    got = Appeal.objects.values_list(*[IsoDateTime(Value(t, output_field=DateTimeField()), zone=zone)
                                       for t in times]).get()
    # then each is DRF's DateTimeField output, byte for byte
    with timezone.override(zone):
        field = serializers.DateTimeField()
        assert list(got) == [field.to_representation(t) for t in times]
