"""'Why is this popup here?' in plain words: drug categories and symptoms in words, county codes
as names ('county (code)' when unknown), actors as roles, an upstream type 1 that does not claim
to lift by itself, and history rows in words in the city's time zone (no raw JSON)."""

import pytest
from django.urls import reverse
from django.utils import translation

from communities.models import User
from communities.selectors import county_label
from healthkit import engine
from healthkit.models import PopupCase
from healthkit.selectors import popup_event_lines, popup_explain
from healthkit.services import popup_lift
from tests.factories import PopupCaseFactory, UserFactory
from tests.factories.healthkit import ArrivalFactory, MedicalEventFactory, StayFactory, cst

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def test_county_codes_read_as_names_and_unknown_ones_as_county_code():
    assert county_label("110105") == "北京市朝阳区"
    assert county_label("533102").endswith("瑞丽市")
    assert county_label("999999") == "county (999999)"


def test_drug_category_and_symptom_in_words():
    drug = MedicalEventFactory(kind="drug_purchase", detail="anti_infection", occurred_at=cst(2022, 6, 1, 9))
    engine.evaluate(resident_ids=[drug.resident_id], at=cst(2022, 6, 5, 9))
    case = PopupCase.objects.get(resident=drug.resident, popup_type=4)
    text = "\n".join(popup_explain(case))
    assert "antivirals or antibiotics" in text and "anti_infection" not in text
    visit = MedicalEventFactory(kind="clinic_visit", detail="smell_taste_loss", occurred_at=cst(2022, 6, 1, 9))
    engine.evaluate(resident_ids=[visit.resident_id], at=cst(2022, 6, 5, 9))
    case = PopupCase.objects.get(resident=visit.resident, popup_type=4)
    assert "loss of smell or taste" in "\n".join(popup_explain(case))


def test_arrival_names_the_county_it_came_from():
    arrival = ArrivalFactory(arrived_at=cst(2022, 6, 1, 9), from_county="440106")
    engine.evaluate(resident_ids=[arrival.resident_id], at=cst(2022, 6, 5, 9))
    case = PopupCase.objects.get(resident=arrival.resident, popup_type=4)
    assert "广东省广州市天河区" in "\n".join(popup_explain(case))


def test_upstream_type_1_does_not_claim_to_lift_by_itself():
    case = PopupCaseFactory(popup_type=1, source=PopupCase.Source.UPSTREAM)
    text = "\n".join(popup_explain(case))
    assert "not lifted automatically" in text and "it is lifted when the county" not in text


def test_a_lift_by_a_worker_names_the_role_not_the_user():
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER, username="wang-private")
    case = PopupCaseFactory(popup_type=3)
    popup_lift(case=case, actor=worker, reason="核查无风险", at=cst(2022, 9, 2, 9))
    text = "\n".join(popup_explain(case))
    assert "by the community" in text and "wang-private" not in text


def test_history_rows_are_words_in_city_time_not_json(client):
    stay = StayFactory(county="420111", started_at=cst(2022, 6, 1, 9), ended_at=cst(2022, 6, 5, 12))
    from tests.factories.healthkit import LocalCaseFactory

    LocalCaseFactory(county="420111", reported_at=cst(2022, 6, 8, 10))
    engine.evaluate(resident_ids=[stay.resident_id], at=cst(2022, 6, 9))
    case = PopupCase.objects.get(resident=stay.resident, popup_type=1)
    lines = popup_event_lines(case.events.get())
    assert any("湖北省武汉市洪山区" in line and "2022-06-01 09:00" in line for line in lines)
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    html = client.get(reverse("console-popup", args=[case.pk])).content.decode()
    assert "{&#x27;" not in html and '{"' not in html and "<code>" not in html
    assert "湖北省武汉市洪山区" in html


def test_risk_window_trace_is_words_in_city_time():
    from types import SimpleNamespace

    from venues.selectors import window_event_lines

    event = SimpleNamespace(data={
        "before": {"from": "2022-11-01T02:00:00+00:00", "to": "2022-11-01T04:00:00+00:00", "risk_level": "high",
                   "version": 1},
        "visitors": 12, "raised": 3, "updated": 1, "withdrawn": 0, "flagged": [5], "flagged_count": 1})
    text = "\n".join(window_event_lines(event))
    assert "2022-11-01 10:00 to 2022-11-01 12:00" in text  # UTC stored, city time shown
    assert "12 visitors" in text and "{" not in text
