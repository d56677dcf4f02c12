"""Each raise and lift of the engine writes one event and one outbox record whose stored bytes are
what the original expressions give: the key `popup-<case>-<kind>`, the payload as
jsonb_build_object('event', 'case', 'popup_type', 'at', 'policy', 'rule') and the event's data as
jsonb_build_object('rule', 'policy', 'records', 'evaluated_at'), compared as stored text (jsonb
keeps one canonical form, so equal text is equal bytes), for every popup type, raise and lift,
the sweep and the event-driven path, and an upstream assignment. A lift's "why" is the interval
that ended last."""

import json

import pytest
from django.db import connection

from healthkit import engine
from healthkit.models import OutboxRecord, PopupCase, PopupEvent, TestResult
from tests.factories import TestResultFactory
from tests.factories.healthkit import (
    ArrivalFactory,
    DownstreamEndpointFactory,
    LocalCaseFactory,
    PopupAssignmentFactory,
    QuarantineOrderFactory,
    StayFactory,
    cst,
)

pytestmark = pytest.mark.django_db
RAISE_AT = cst(2022, 6, 10, 12)
LIFT_AT = cst(2022, 6, 20, 12)
RULES = json.dumps({str(k): v for k, v in engine.RULES.items()})

# the version in force at the change, as the engine's statement joins it
_POLICY = """LEFT JOIN healthkit_popuppolicy pv ON pv.popup_type = x.popup_type AND pv.effective_from <= x.at
             AND (pv.effective_to IS NULL OR pv.effective_to > x.at)"""


def _negative(resident, *, sampled, received):
    return TestResultFactory(resident=resident, sampled_at=sampled, resulted_at=received, received_at=received,
                             result=TestResult.Outcome.NEGATIVE)


@pytest.fixture
def timeline():
    """Popups of types 1, 2, 4 and 5 raised by a sweep at RAISE_AT and lifted by 20 June (type 4
    of one resident by the event-driven path), and one upstream assignment (type 3)."""
    DownstreamEndpointFactory()
    stay = StayFactory(started_at=cst(2022, 6, 1, 9), ended_at=cst(2022, 6, 5, 12), received_at=cst(2022, 6, 5, 12))
    local = LocalCaseFactory(county=stay.county, reported_at=cst(2022, 6, 8, 10))
    order = QuarantineOrderFactory(starts_at=cst(2022, 6, 5, 10), ends_at=cst(2022, 6, 12, 10))
    first = ArrivalFactory(arrived_at=cst(2022, 6, 6, 9))
    second = ArrivalFactory(resident=first.resident, arrived_at=cst(2022, 6, 6, 12))
    # the first trigger's interval ends on 11 June, the second's (sampled after it) on 12 June
    _negative(first.resident, sampled=cst(2022, 6, 6, 10), received=cst(2022, 6, 11, 8))
    last = _negative(first.resident, sampled=cst(2022, 6, 11, 9), received=cst(2022, 6, 12, 9))
    alone = ArrivalFactory(arrived_at=cst(2022, 6, 6, 9))
    alone_result = _negative(alone.resident, sampled=cst(2022, 6, 12, 9), received=cst(2022, 6, 12, 10))
    port = StayFactory(county="533102", border_port=True, started_at=cst(2022, 6, 1, 9),
                       ended_at=cst(2022, 6, 3, 12), received_at=cst(2022, 6, 4, 8))
    PopupAssignmentFactory(assigned_at=cst(2022, 6, 9, 8))

    raised = engine.evaluate(resident_ids=None, at=RAISE_AT)
    assert raised.raised == 6  # types 1, 2, 4 (twice), 5 and the upstream type 3
    assert engine.evaluate(resident_ids=[alone.resident_id], at=LIFT_AT).lifted == 1
    assert engine.evaluate(resident_ids=None, at=LIFT_AT).lifted == 4
    return {
        (stay.resident_id, 1): ({"stay": stay.pk, "local_case": local.pk, "ended_by": "county_case_free"},
                                cst(2022, 6, 15, 10)),
        (order.resident_id, 2): ({"quarantine_order": order.pk, "ended_by": "quarantine_ended"},
                                 cst(2022, 6, 13)),
        (first.resident_id, 4): ({"arrival": second.pk, "ended_by": "negative_result", "test_result": last.pk},
                                 cst(2022, 6, 12, 9)),
        (alone.resident_id, 4): ({"arrival": alone.pk, "ended_by": "negative_result",
                                  "test_result": alone_result.pk}, cst(2022, 6, 12, 10)),
        (port.resident_id, 5): ({"stay": port.pk, "ended_by": "window_since_leaving"}, cst(2022, 6, 17, 12)),
    }


def test_each_lift_keeps_the_why_of_the_interval_that_ended_last(timeline):
    lifted = PopupCase.objects.filter(state="lifted").order_by("resident_id", "popup_type")
    assert {(c.resident_id, c.popup_type) for c in lifted} == set(timeline)
    for case in lifted:
        records, lifted_at = timeline[(case.resident_id, case.popup_type)]
        assert case.lifted_at == lifted_at
        assert case.events.get(kind=PopupEvent.Kind.LIFTED).data["records"] == records


def test_one_event_and_one_record_per_change(timeline):
    for case in PopupCase.objects.all():
        kinds = ["raised"] + (["lifted"] if case.state == "lifted" else [])
        assert list(case.events.order_by("pk").values_list("kind", flat=True)) == kinds
        assert sorted(OutboxRecord.objects.filter(case=case).values_list("kind", flat=True)) == sorted(kinds)
    assert PopupCase.objects.filter(popup_type=3, state="active").count() == 1


def test_outbox_keys_and_payloads_are_the_original_expressions_byte_for_byte(timeline):
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT x.idempotency_key, 'popup-' || x.case_id || '-' || x.kind,
                   x.payload::text,
                   jsonb_build_object('event', 'popup.' || x.kind, 'case', x.case_id, 'popup_type', x.popup_type,
                                      'at', x.at, 'policy', pv.version,
                                      'rule', CASE WHEN x.popup_type = 3 THEN 'upstream_assignment'
                                                   ELSE %s::jsonb->>(x.popup_type::text) END)::text,
                   x.popup_type, x.kind
            FROM healthkit_outboxrecord x {_POLICY}
            ORDER BY x.id""", [RULES])  # noqa: S608 - constants only
        rows = cursor.fetchall()
    assert {(r[4], r[5]) for r in rows} == {(1, "raised"), (2, "raised"), (3, "raised"), (4, "raised"), (5, "raised"),
                                             (1, "lifted"), (2, "lifted"), (4, "lifted"), (5, "lifted")}
    assert len(rows) == 11
    for key, expected_key, payload, expected_payload, _type, _kind in rows:
        assert (key, payload) == (expected_key, expected_payload)
        assert json.loads(payload)["policy"]  # a version was in force: the comparison covers a string


def test_engine_event_data_is_the_original_expression_byte_for_byte(timeline):
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT x.data::text,
                   jsonb_build_object('rule', %s::jsonb->>(x.popup_type::text), 'policy', pv.version,
                                      'records', x.data->'records',
                                      'evaluated_at', CASE x.kind WHEN 'raised' THEN %s ELSE %s END)::text
            FROM (SELECT e.*, c.popup_type FROM healthkit_popupevent e
                  JOIN healthkit_popupcase c ON c.id = e.case_id WHERE e.actor_label = 'engine') x {_POLICY}
            ORDER BY x.id""", [RULES, RAISE_AT, LIFT_AT])  # noqa: S608 - constants only
        rows = cursor.fetchall()
    assert len(rows) == 10
    for data, expected in rows:
        assert data == expected
