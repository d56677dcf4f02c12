"""health_status_order_create: yellow/red orders the health code reads."""

import pytest

from healthkit.errors import ApplicationError
from healthkit.selectors import health_code_at
from healthkit.services import health_status_order_create
from tests.factories import ResidentFactory, UserFactory
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db


def test_yellow_order_colours_the_code_during_its_period_only():
    resident = ResidentFactory()
    order = health_status_order_create(resident=resident, status="yellow", starts_at=cst(2022, 5, 1),
                                       ends_at=cst(2022, 5, 8), reason="居家观察", actor=UserFactory())
    assert health_code_at(resident, cst(2022, 4, 30, 23)).color == "green"
    assert health_code_at(resident, cst(2022, 5, 1)).color == "yellow"
    assert health_code_at(resident, cst(2022, 5, 8)).color == "green"
    again = health_status_order_create(resident=resident, status="yellow", starts_at=cst(2022, 5, 1),
                                       ends_at=cst(2022, 5, 8), reason="居家观察", actor=None)
    assert again.pk == order.pk


def test_red_beats_yellow_and_bad_orders_are_refused():
    resident = ResidentFactory()
    health_status_order_create(resident=resident, status="yellow", starts_at=cst(2022, 5, 1), ends_at=None,
                               reason="a", actor=None)
    health_status_order_create(resident=resident, status="red", starts_at=cst(2022, 5, 2), ends_at=None,
                               reason="b", actor=None)
    assert health_code_at(resident, cst(2022, 5, 3)).color == "red"
    with pytest.raises(ApplicationError):
        health_status_order_create(resident=resident, status="blue", starts_at=cst(2022, 5, 1), ends_at=None,
                                   reason="c", actor=None)
    with pytest.raises(ApplicationError):
        health_status_order_create(resident=resident, status="red", starts_at=cst(2022, 5, 2),
                                   ends_at=cst(2022, 5, 1), reason="c", actor=None)
