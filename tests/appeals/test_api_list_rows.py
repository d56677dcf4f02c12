"""The appeals list is built from .values() by plain functions: its rows must be exactly what the
documented serializer (AppealSummarySerializer, the schema) gives for the same appeals."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from rest_framework.test import APIClient

from appeals.api import AppealSummarySerializer
from appeals.models import Appeal
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
    assert rows[-1]["created_at"] == "2022-11-20T09:02:03.456789+08:00"
