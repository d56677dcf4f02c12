"""The exposure job: exact selection at the window's edges, idempotency, the popup's cause."""

import datetime as dt

import pytest

from healthkit.models import DownstreamEndpoint, OutboxDelivery, OutboxRecord, PopupCase, PopupEvent
from tests.factories import ResidentFactory
from tests.factories.venues import RiskWindowFactory, VenueFactory, VenueScanFactory, cst
from venues.exposure import exposure_run
from venues.models import Exposure, RiskWindowEvent

pytestmark = pytest.mark.django_db
RUN_AT = cst(2022, 9, 2, 9)


def _scan(venue, at, resident=None):
    return VenueScanFactory(venue=venue, scanned_at=at, resident=resident or ResidentFactory())


def test_window_is_half_open_start_included_end_excluded():
    # given a window [10:00, 14:00) and scans just around both edges
    venue = VenueFactory()
    window = RiskWindowFactory(venue=venue, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 14))
    second = dt.timedelta(seconds=1)
    before = _scan(venue, cst(2022, 9, 1, 10) - second)
    at_start = _scan(venue, cst(2022, 9, 1, 10))
    inside = _scan(venue, cst(2022, 9, 1, 13, 59, 59))
    at_end = _scan(venue, cst(2022, 9, 1, 14))
    other_venue = _scan(VenueFactory(), cst(2022, 9, 1, 12))

    # when the exposure job runs
    result = exposure_run(window_id=window.pk, at=RUN_AT)

    # then exactly the scans in [from, to) raise popup 3
    raised = set(PopupCase.objects.filter(popup_type=3).values_list("resident_id", flat=True))
    assert raised == {at_start.resident_id, inside.resident_id}
    assert before.resident_id not in raised and at_end.resident_id not in raised
    assert other_venue.resident_id not in raised
    assert result.raised == 2 and result.visitors == 2


def test_cause_carries_what_the_community_investigation_needs():
    venue = VenueFactory(name="望京某火锅店")
    window = RiskWindowFactory(venue=venue)
    resident = ResidentFactory()
    first = _scan(venue, cst(2022, 9, 1, 11), resident)
    _scan(venue, cst(2022, 9, 1, 12), resident)

    exposure_run(window_id=window.pk, at=RUN_AT)

    case = PopupCase.objects.get(resident=resident)
    assert case.source == "venue" and case.dedupe_key == f"venue-risk:{window.pk}"
    assert case.state == "active" and case.raised_at == RUN_AT
    cause = case.cause
    assert cause["venue"] == venue.pk and cause["venue_name"] == "望京某火锅店"
    assert cause["window_id"] == window.pk and cause["risk_level"] == "high"
    assert cause["scan"] == first.pk
    assert dt.datetime.fromisoformat(cause["scanned_at"]) == first.scanned_at
    assert cause["scans_in_window"] == 2
    assert cause["community"] == resident.community_id
    assert dt.datetime.fromisoformat(cause["window"]["from"]) == window.starts_at
    event = PopupEvent.objects.get(case=case)
    assert event.kind == "raised" and event.actor_id is None and event.actor_label == "venue-exposure"


def test_running_twice_raises_nothing_twice_even_after_a_lift():
    venue = VenueFactory()
    window = RiskWindowFactory(venue=venue)
    scans = [_scan(venue, cst(2022, 9, 1, 11)) for _ in range(3)]
    assert exposure_run(window_id=window.pk, at=RUN_AT).raised == 3

    # the community lifts one of them
    from healthkit.services import popup_lift

    lifted = PopupCase.objects.get(resident=scans[0].resident)
    popup_lift(case=lifted, actor_label="community", reason="排查无风险", at=RUN_AT + dt.timedelta(hours=1))

    again = exposure_run(window_id=window.pk, at=RUN_AT + dt.timedelta(hours=2))
    assert (again.raised, again.updated, again.withdrawn) == (0, 0, 0)
    assert PopupCase.objects.filter(popup_type=3).count() == 3
    assert Exposure.objects.filter(window=window).count() == 3


def test_raise_writes_one_batch_outbox_record_and_one_delivery_per_active_endpoint():
    DownstreamEndpoint.objects.create(name="rail", url="http://127.0.0.1:9/rail")
    DownstreamEndpoint.objects.create(name="air", url="http://127.0.0.1:9/air")
    DownstreamEndpoint.objects.create(name="off", url="http://127.0.0.1:9/off", active=False)
    venue = VenueFactory()
    window = RiskWindowFactory(venue=venue)
    _scan(venue, cst(2022, 9, 1, 11))

    result = exposure_run(window_id=window.pk, at=RUN_AT)

    record = OutboxRecord.objects.get()
    assert record.kind == "raised" and record.popup_type == 3
    assert record.idempotency_key == f"window-{window.pk}-v1-raised"
    assert record.case_ids == list(PopupCase.objects.filter(popup_type=3).values_list("id", flat=True))
    assert record.payload["rule"] == "venue_risk"
    assert OutboxDelivery.objects.filter(record=record).count() == 2 == result.deliveries


def test_late_scan_is_picked_up_by_the_next_run_and_traced():
    venue = VenueFactory()
    window = RiskWindowFactory(venue=venue)
    _scan(venue, cst(2022, 9, 1, 11))
    exposure_run(window_id=window.pk, at=RUN_AT)
    _scan(venue, cst(2022, 9, 1, 12))

    result = exposure_run(window_id=window.pk, at=RUN_AT + dt.timedelta(hours=1))

    assert result.raised == 1
    assert PopupCase.objects.filter(popup_type=3).count() == 2
    assert RiskWindowEvent.objects.filter(window=window, kind="exposure").count() == 2


def test_no_popup_when_type_3_is_not_in_force():
    venue = VenueFactory()
    window = RiskWindowFactory(venue=venue, starts_at=cst(2021, 9, 1, 10), ends_at=cst(2021, 9, 1, 14))
    _scan(venue, cst(2021, 9, 1, 11))

    result = exposure_run(window_id=window.pk, at=cst(2021, 9, 2))

    assert result.skipped == "no_policy"
    assert not PopupCase.objects.exists()


def test_popup_explain_names_the_venue_and_window_but_no_person():
    from healthkit.selectors import popup_explain

    venue = VenueFactory(name="三里屯某酒吧")
    window = RiskWindowFactory(venue=venue)
    resident = ResidentFactory(name="李四")
    _scan(venue, cst(2022, 9, 1, 11), resident)
    exposure_run(window_id=window.pk, at=RUN_AT)

    lines = popup_explain(PopupCase.objects.get(resident=resident))

    text = " ".join(lines)
    assert "三里屯某酒吧" in text and "2022-09-01 10:00" in text
    assert "李四" not in text and resident.id_masked not in text


def test_raised_event_keeps_the_cause_once_per_run_and_reads_as_before():
    # given two visitors of one window, raised by one run
    from healthkit.selectors import popup_event_lines, popup_explain
    from venues.exposure import cause_as_raised

    venue = VenueFactory(name="望京某火锅店")
    window = RiskWindowFactory(venue=venue)
    first, second = _scan(venue, cst(2022, 9, 1, 11)), _scan(venue, cst(2022, 9, 1, 12))
    exposure_run(window_id=window.pk, at=RUN_AT)

    for scan in (first, second):
        case = PopupCase.objects.get(resident_id=scan.resident_id)
        event = case.events.get(kind="raised")
        # then the event stands for the whole cause as raised, its window part kept once per run
        assert cause_as_raised(event) == case.cause
        assert "venue_name" not in event.data["cause"] and "window" not in event.data["cause"]
        # and what staff and the resident read is what an event carrying the whole cause gave
        whole = PopupEvent(case=case, kind="raised", at=event.at, actor_label=event.actor_label,
                           reason=event.reason, data={"rule": "venue_risk", "policy": event.data["policy"],
                                                      "cause": case.cause, "records": case.cause["records"]})
        assert popup_event_lines(event) == popup_event_lines(whole) != []
        assert any("望京某火锅店" in line for line in popup_explain(case))
    assert RiskWindowEvent.objects.filter(window=window, kind="exposure", data__has_key="cause_shared").count() == 1


def test_event_with_the_whole_cause_reads_as_it_is():
    from venues.exposure import cause_as_raised

    event = PopupEvent(kind="raised", at=RUN_AT, data={"cause": {"rule": "venue_risk", "scan": 1}})
    assert cause_as_raised(event) == {"rule": "venue_risk", "scan": 1}


def test_open_popup_of_the_window_without_its_exposure_row_is_left_and_the_rest_raised():
    # given two visitors, one of whom already holds an open popup with this window's key (no
    # exposure row: cannot come from the job, which writes both)
    venue = VenueFactory()
    window = RiskWindowFactory(venue=venue)
    held, other = _scan(venue, cst(2022, 9, 1, 11)), _scan(venue, cst(2022, 9, 1, 12))
    PopupCase.objects.create(resident_id=held.resident_id, popup_type=3, dedupe_key=window.dedupe_key,
                             source="venue", raised_at=RUN_AT)

    # when the job runs, it skips that visitor instead of failing the window
    result = exposure_run(window_id=window.pk, at=RUN_AT)

    # then only the other visitor is raised, with an exposure row
    assert result.raised == 1
    assert PopupCase.objects.filter(resident_id=held.resident_id).count() == 1
    assert list(Exposure.objects.filter(window=window).values_list("resident_id", flat=True)) == [other.resident_id]


def test_raised_events_of_two_runs_at_one_instant_each_read_their_own_window_version():
    # given a run, then a correction widening the window and a second run at the same instant
    from venues import services
    from venues.exposure import cause_as_raised

    venue = VenueFactory()
    window = RiskWindowFactory(venue=venue, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 12))
    early, late = _scan(venue, cst(2022, 9, 1, 11)), _scan(venue, cst(2022, 9, 1, 13))
    exposure_run(window_id=window.pk, at=RUN_AT)
    first_cause = PopupCase.objects.get(resident_id=early.resident_id).cause
    services.risk_window_correct(window=window, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 14),
                                 risk_level="high", reason="扩大", correction="扩大", actor=None, at=RUN_AT)
    exposure_run(window_id=window.pk, at=RUN_AT)

    # then each raised event reads the window as it stood for its own run
    early_event = PopupEvent.objects.get(case__resident_id=early.resident_id, kind="raised")
    late_case = PopupCase.objects.get(resident_id=late.resident_id)
    assert cause_as_raised(early_event) == first_cause and first_cause["window_version"] == 1
    assert cause_as_raised(late_case.events.get(kind="raised")) == late_case.cause
    assert late_case.cause["window_version"] == 2
