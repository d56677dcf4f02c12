"""popup_explain answers the resident's "why?": rule, policy version, the records that decided
it (dates, county), how it was lifted; never an ID number, phone or name."""

import pytest
from django.utils import translation

from healthkit import clock, engine
from healthkit.models import TestResult
from healthkit.selectors import popup_explain
from healthkit.services import popup_lift
from tests.factories import ResidentFactory, TestResultFactory
from tests.factories.healthkit import (
    ArrivalFactory,
    LocalCaseFactory,
    PopupAssignmentFactory,
    StayFactory,
    cst,
)
from tests.healthkit.engine_helpers import cases

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def _no_personal_data(lines, resident):
    text = "\n".join(lines)
    assert resident.name not in text
    assert resident.reveal_id_number() not in text
    assert resident.id_masked not in text


def test_type_1_names_the_county_the_dates_and_the_policy_version():
    stay = StayFactory(county="420111", started_at=cst(2022, 6, 1, 9), ended_at=cst(2022, 6, 5, 12))
    LocalCaseFactory(county="420111", reported_at=cst(2022, 6, 8, 10))
    engine.evaluate(resident_ids=[stay.resident_id], at=cst(2022, 6, 9))
    (case,) = cases(stay.resident, 1)
    with clock.frozen_at(cst(2022, 6, 9)):  # an open popup is explained by the version in force now
        lines = popup_explain(case)
    text = "\n".join(lines)
    assert "Rule 1" in text and "14 days" in text and "2022-02-12" in text
    assert "湖北省武汉市洪山区" in text and "420111" not in text  # the county in words, not its code
    assert "2022-06-01 09:00" in text and "2022-06-08" in text
    _no_personal_data(lines, stay.resident)


def test_type_4_lifted_by_a_negative_result_says_when_it_was_received():
    arrival = ArrivalFactory(arrived_at=cst(2022, 6, 1, 9))
    engine.evaluate(resident_ids=[arrival.resident_id], at=cst(2022, 6, 4, 9))
    TestResultFactory(resident=arrival.resident, sampled_at=cst(2022, 6, 4, 10),
                      resulted_at=cst(2022, 6, 4, 12), received_at=cst(2022, 6, 4, 12),
                      result=TestResult.Outcome.NEGATIVE)
    engine.evaluate(resident_ids=[arrival.resident_id], at=cst(2022, 6, 4, 13))
    (case,) = cases(arrival.resident, 4)
    text = "\n".join(popup_explain(case))
    assert "Rule 4" in text and "72 hours" in text
    assert "Arrived in the city on 2022-06-01 09:00" in text
    assert "Lifted automatically on 2022-06-04 12:00" in text
    assert "negative result sampled on 2022-06-04 10:00 was received on 2022-06-04 12:00" in text


def test_upstream_type_3_gives_the_reason_and_a_community_lift_its_reason():
    resident = ResidentFactory()
    PopupAssignmentFactory(resident=resident, reason="时空伴随", assigned_at=cst(2022, 9, 1, 8))
    engine.evaluate(resident_ids=[resident.pk], at=cst(2022, 9, 1, 9))
    (case,) = cases(resident, 3)
    popup_lift(case=case, actor_label="community", reason="核查无风险", at=cst(2022, 9, 2, 9))
    lines = popup_explain(case)
    text = "\n".join(lines)
    assert "Rule 3" in text and "时空伴随" in text and "2022-09-01 08:00" in text
    assert "Lifted on 2022-09-02 09:00 by the community: 核查无风险" in text
    _no_personal_data(lines, resident)


def test_venue_cause_names_the_venue_and_its_window():
    from tests.factories import PopupCaseFactory

    case = PopupCaseFactory(popup_type=3, source="venue", dedupe_key="venue-risk:1",
                            cause={"rule": "venue_exposure", "venue_name": "某超市",
                                   "window": {"from": "2022-05-01T10:00:00+08:00",
                                              "to": "2022-05-01T12:00:00+08:00"},
                                   "scanned_at": "2022-05-01T11:05:00+08:00"},
                            raised_at=cst(2022, 5, 2))
    text = "\n".join(popup_explain(case))
    assert "某超市" in text and "2022-05-01 10:00" in text and "2022-05-01 12:00" in text
    assert "scanned there on 2022-05-01 11:05" in text


def test_lines_are_translated_plain_strings():
    arrival = ArrivalFactory(arrived_at=cst(2022, 6, 1, 9))
    engine.evaluate(resident_ids=[arrival.resident_id], at=cst(2022, 6, 5))
    (case,) = cases(arrival.resident, 4)
    with translation.override("zh-hans"):
        lines = popup_explain(case)
    assert all(type(line) is str and line for line in lines)  # plain str, safe to store or send
    assert "未按要求进行核酸检测" in lines[0]
