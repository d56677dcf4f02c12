"""Failing downstream deliveries on the dashboard, batches included: a batch (one record for a
window's residents, no resident on its delivery row) counts once for the city, once in every
district and community one of its residents lives in, and never in a place it does not reach."""

import pytest
from django.utils import timezone

from appeals.oversight import selectors, services
from healthkit.models import OutboxDelivery, OutboxRecord
from tests.factories import (
    CommunityFactory,
    DistrictFactory,
    PopupCaseFactory,
    ResidentFactory,
    StreetFactory,
)
from tests.factories.healthkit import DownstreamEndpointFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def places():
    chaoyang, haidian, fengtai = (DistrictFactory(code="110105"), DistrictFactory(code="110108"),
                                  DistrictFactory(code="110106"))
    return {
        "east": CommunityFactory(street=StreetFactory(district=chaoyang, code="110105001")),
        "east2": CommunityFactory(street=StreetFactory(district=chaoyang, code="110105002")),
        "west": CommunityFactory(street=StreetFactory(district=haidian, code="110108001")),
        "south": CommunityFactory(street=StreetFactory(district=fengtai, code="110106001")),
        "chaoyang": chaoyang, "haidian": haidian, "fengtai": fengtai,
    }


def _batch(key: str, cases: list) -> OutboxRecord:
    return OutboxRecord.objects.create(idempotency_key=key, kind="raised", popup_type=3, at=timezone.now(),
                                       payload={}, case_ids=[c.pk for c in cases],
                                       resident_ids=[c.resident_id for c in cases])


def _deliveries(**place) -> dict:
    base = selectors.DashboardFilters.default()
    return selectors.deliveries(selectors.DashboardFilters(date_from=base.date_from, date_to=base.date_to, **place))


def _failing(figures: dict) -> tuple[int, int]:
    return figures.get("outbox_failed", 0), figures.get("outbox_dead", 0)


def test_failing_batches_count_once_for_the_city_and_in_each_place_they_reach(places):
    endpoint = DownstreamEndpointFactory()
    east = [PopupCaseFactory(resident=ResidentFactory(community=places["east"])) for _ in range(3)]
    east2 = PopupCaseFactory(resident=ResidentFactory(community=places["east2"]))
    west = PopupCaseFactory(resident=ResidentFactory(community=places["west"]))
    PopupCaseFactory(resident=ResidentFactory(community=places["south"]))  # reached by no batch
    # given a failing batch reaching Chaoyang (two communities) and Haidian, a dead one reaching
    # Chaoyang only, and a delivered one reaching Haidian
    failing = _batch("exposure-w1", [*east, east2, west])
    dead = _batch("exposure-w2", east[:1])
    done = _batch("exposure-w3", [west])
    for record, state in ((failing, "failed"), (dead, "dead"), (done, "delivered")):
        OutboxDelivery.objects.create(record=record, endpoint=endpoint, state=state)  # as the exposure job writes
    assert OutboxDelivery.objects.filter(resident__isnull=True).count() == 3

    services.summary_refresh()

    assert _failing(_deliveries()) == (1, 1)  # the city: each batch once, not once per resident or district
    assert _failing(_deliveries(district=places["chaoyang"])) == (1, 1)
    assert _failing(_deliveries(district=places["haidian"])) == (1, 0)
    assert _failing(_deliveries(district=places["fengtai"])) == (0, 0)
    assert _failing(_deliveries(community=places["east"])) == (1, 1)
    assert _failing(_deliveries(community=places["east2"])) == (1, 0)
    assert _failing(_deliveries(community=places["south"])) == (0, 0)


def test_batches_and_single_records_add_up(places):
    endpoint = DownstreamEndpointFactory()
    case = PopupCaseFactory(resident=ResidentFactory(community=places["west"]))
    single = OutboxRecord.objects.create(idempotency_key=f"popup-{case.pk}-raised", kind="raised", case=case,
                                         resident_id=case.resident_id, popup_type=3, at=timezone.now(), payload={})
    batch = _batch("exposure-w9", [PopupCaseFactory(resident=ResidentFactory(community=places["west"]))])
    OutboxDelivery.objects.create(record=single, endpoint=endpoint, resident_id=case.resident_id, state="failed")
    OutboxDelivery.objects.create(record=batch, endpoint=endpoint, state="failed")

    services.summary_refresh()

    assert _failing(_deliveries()) == (2, 0)
    assert _failing(_deliveries(district=places["haidian"])) == (2, 0)
    assert _failing(_deliveries(community=places["west"])) == (2, 0)
