"""Who may lift a popup comes from the policy in force: a community decision lifts popups 1 (for
residents in the city) and 3, never 2, 4 or 5, which lift by their rule."""

import pytest
from django.utils import translation

from healthkit.errors import ApplicationError
from healthkit.models import PopupCase
from healthkit.services import popup_lift, popup_lift_authorities
from tests.factories import PopupCaseFactory
from tests.factories.healthkit import cst

pytestmark = pytest.mark.django_db
AUGUST = cst(2022, 8, 1)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def test_authorities_come_from_the_policy_in_force():
    assert popup_lift_authorities(3, AUGUST) == {"community"}
    assert popup_lift_authorities(1, AUGUST) == {"engine", "community"}
    assert popup_lift_authorities(4, AUGUST) == {"engine"}
    assert popup_lift_authorities(1, cst(2021, 1, 1)) is None  # before the numbered rules


@pytest.mark.parametrize("popup_type", [1, 3])
def test_a_community_decision_lifts_1_and_3(popup_type):
    case = PopupCaseFactory(popup_type=popup_type, raised_at=cst(2022, 7, 30))
    popup_lift(case=case, actor_label="community", reason="核实无风险", at=AUGUST, authority="community")
    case.refresh_from_db()
    assert case.state == PopupCase.State.LIFTED


@pytest.mark.parametrize("popup_type", [2, 4])
def test_a_community_decision_cannot_lift_2_or_4(popup_type):
    case = PopupCaseFactory(popup_type=popup_type, raised_at=cst(2022, 7, 30))
    with pytest.raises(ApplicationError, match=f"Popup {popup_type} is not lifted by a community decision"):
        popup_lift(case=case, actor_label="community", reason="x", at=AUGUST, authority="community")
    case.refresh_from_db()
    assert case.state == PopupCase.State.ACTIVE and not case.events.filter(kind="lifted").exists()


def test_the_engine_lifts_without_an_authority_check():
    case = PopupCaseFactory(popup_type=4, raised_at=cst(2022, 7, 30))
    popup_lift(case=case, actor_label="engine", reason="negative result", at=AUGUST)
    case.refresh_from_db()
    assert case.state == PopupCase.State.LIFTED
