"""Type 1 of a resident already back in the city: the sweep gives it to the community, the
community lifts it, and the engine does not raise it again for the same records."""

import pytest

from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from healthkit import engine
from healthkit.models import PopupCase
from tests.factories.clearance import WorkerFactory
from tests.factories.healthkit import ArrivalFactory, LocalCaseFactory, StayFactory, cst

pytestmark = pytest.mark.django_db


def test_community_lift_of_an_in_city_type_1_holds_against_the_engine():
    stay = StayFactory(started_at=cst(2022, 11, 1, 9), ended_at=cst(2022, 11, 5, 12))
    resident = stay.resident
    ArrivalFactory(resident=resident, arrived_at=cst(2022, 11, 5, 18), from_county=stay.county)
    LocalCaseFactory(county=stay.county, reported_at=cst(2022, 11, 6, 10))
    engine.evaluate(resident_ids=[resident.pk], at=cst(2022, 11, 6, 11))
    popup = PopupCase.objects.get(resident=resident, popup_type=1, state="active")

    (task_id,) = services.clearance_popup_sweep(at=cst(2022, 11, 6, 11, 1))
    task = ClearanceTask.objects.get(pk=task_id)
    assert task.origin == ClearanceTask.Origin.IN_CITY and task.popup == popup

    worker = WorkerFactory(communities=[task.community])
    services.clearance_accept(task=task, actor=worker, reason="已报备，居家健康监测期满", at=cst(2022, 11, 7, 9))
    engine.evaluate(resident_ids=[resident.pk], at=cst(2022, 11, 8, 9))

    assert not PopupCase.objects.filter(resident=resident, popup_type=1, state__in=PopupCase.OPEN_STATES).exists()
