"""The exposure job tells the ticket systems about a window version's raises in ONE batch
outbox record, sent in pages (one Idempotency-Key per page), exactly once per endpoint, in
order with each resident's other records."""

import datetime as dt
import json

import pytest
from django.utils import timezone

from healthkit import outbox
from healthkit.models import OutboxAttempt, OutboxDelivery, OutboxRecord, PopupCase
from healthkit.services import popup_lift
from tests.factories import ResidentFactory
from tests.factories.healthkit import DownstreamEndpointFactory
from tests.factories.venues import VenueFactory, VenueScanFactory, cst
from venues import services
from venues.exposure import exposure_run

pytestmark = pytest.mark.django_db
T0 = cst(2022, 9, 2, 9)


class FakeEndpoints:
    """Stands in for the HTTP POST: records every call; `fail` lists keys to refuse once each
    (or every time while `down`)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.fail: set[str] = set()
        self.down = False

    def __call__(self, *, url: str, body: dict, token: str, idempotency_key: str, timeout: float = 10,
                 signing_secret: str = "") -> int:
        json.dumps(body)  # what goes on the wire must be JSON
        self.calls.append({"url": url, "key": idempotency_key, "body": body})
        if self.down or idempotency_key in self.fail:
            self.fail.discard(idempotency_key)
            raise outbox.DeliveryError("HTTP 503", status_code=503)
        return 200

    def keys(self, url: str | None = None) -> list[str]:
        return [c["key"] for c in self.calls if url is None or c["url"] == url]


@pytest.fixture
def wire(monkeypatch):
    fake = FakeEndpoints()
    monkeypatch.setattr(outbox, "post_json", fake)
    return fake


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(OutboxRecord, "BATCH_PAGE", 2)


@pytest.fixture
def window_with_five():
    venue = VenueFactory()
    scans = [VenueScanFactory(venue=venue, resident=ResidentFactory(), scanned_at=cst(2022, 9, 1, 11, i))
             for i in range(5)]
    window = services.risk_window_create(venue=venue, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 14),
                                         risk_level="high", reason="确诊病例到访", actor=None, at=T0)
    return window, scans


def _make_due() -> None:
    OutboxDelivery.objects.exclude(state="delivered").update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


def _send(endpoint) -> int:
    _make_due()
    return outbox.deliver_endpoint(endpoint_id=endpoint.pk)


def test_one_batch_record_per_window_version_and_a_re_run_writes_nothing(window_with_five):
    rail = DownstreamEndpointFactory(name="rail")
    air = DownstreamEndpointFactory(name="air")
    DownstreamEndpointFactory(name="off", active=False)
    window, scans = window_with_five

    result = exposure_run(window_id=window.pk, at=T0)

    record = OutboxRecord.objects.get()
    assert record.idempotency_key == f"window-{window.pk}-v1-raised" == result.batch
    assert record.kind == "raised" and record.case_id is None and record.resident_id is None
    cases = list(PopupCase.objects.filter(dedupe_key=window.dedupe_key).order_by("id").values_list("id", "resident_id"))
    assert record.case_ids == [c for c, _ in cases] and record.resident_ids == [r for _, r in cases]
    assert sorted(record.resident_ids) == sorted(s.resident_id for s in scans)
    deliveries = OutboxDelivery.objects.filter(record=record)
    assert sorted(d.endpoint_id for d in deliveries) == sorted([rail.pk, air.pk]) and result.deliveries == 2
    assert all(d.resident_id is None and d.state == "pending" and d.pages_done == 0 for d in deliveries)

    again = exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=1))

    assert (again.raised, again.deliveries, again.batch) == (0, 0, "")
    assert OutboxRecord.objects.count() == 1 and OutboxDelivery.objects.count() == 2


def test_late_scans_at_the_same_version_go_one_by_one_and_a_new_version_is_a_new_batch(window_with_five):
    DownstreamEndpointFactory(name="rail")
    window, scans = window_with_five
    exposure_run(window_id=window.pk, at=T0)
    late = VenueScanFactory(venue=window.venue, resident=ResidentFactory(), scanned_at=cst(2022, 9, 1, 13))

    result = exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=1))

    single = OutboxRecord.objects.get(case__resident_id=late.resident_id)
    assert result.raised == 1 and result.batch == ""
    assert single.idempotency_key == f"popup-{single.case_id}-raised" and single.case_ids is None
    assert OutboxDelivery.objects.get(record=single).resident_id == late.resident_id

    # A correction widening the window to a visit it missed: version 2's raises are a new batch.
    outside = VenueScanFactory(venue=window.venue, resident=ResidentFactory(), scanned_at=cst(2022, 9, 1, 15))
    window = services.risk_window_correct(window=window, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 16),
                                          risk_level="high", reason="补充", correction="延长", actor=None,
                                          at=T0 + dt.timedelta(hours=2))
    corrected = exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=2))

    assert corrected.raised == 1 and corrected.updated == 6
    batch = OutboxRecord.objects.get(idempotency_key=f"window-{window.pk}-v2-raised")
    assert batch.resident_ids == [outside.resident_id]
    assert OutboxRecord.objects.filter(case_ids__isnull=False).count() == 2


def test_batch_pages_carry_the_single_record_fields_per_popup(window_with_five, wire, small_pages):
    rail = DownstreamEndpointFactory(name="rail", url="http://rail.test/", send_id_number=True)
    window, scans = window_with_five
    exposure_run(window_id=window.pk, at=T0)
    record = OutboxRecord.objects.get()

    assert _send(rail) == 1

    key = f"window-{window.pk}-v1-raised"
    assert wire.keys() == [f"{key}-p1", f"{key}-p2", f"{key}-p3"]
    pages = [c["body"] for c in wire.calls]
    assert [(p["page"], p["pages"], p["page_size"], len(p["cases"])) for p in pages] == [
        (1, 3, 2, 2), (2, 3, 2, 2), (3, 3, 2, 1)]
    first = pages[0]
    assert first["event"] == "popup.raised" and first["batch"] == key and first["count"] == 5
    assert first["idempotency_key"] == f"{key}-p1" and first["window"] == {"id": window.pk, "version": 1}
    assert first["rule"] == "venue_risk" and first["popup_type"] == 3
    # Every popup once, in case order, each with the fields (and key) its single record would carry.
    items = [item for p in pages for item in p["cases"]]
    assert [i["case"] for i in items] == record.case_ids
    by_resident = {s.resident_id: s.resident for s in scans}
    for item, resident_id in zip(items, record.resident_ids, strict=True):
        assert set(item) == {"event", "case", "popup_type", "at", "policy", "rule", "idempotency_key",
                             "name_masked", "id_number"}
        assert item["event"] == "popup.raised" and item["popup_type"] == 3 and item["rule"] == "venue_risk"
        assert item["idempotency_key"] == f"popup-{item['case']}-raised"
        assert dt.datetime.fromisoformat(item["at"]) == T0 and item["policy"] == record.payload["policy"]
        assert item["id_number"] == by_resident[resident_id].reveal_id_number()
        assert item["name_masked"] == by_resident[resident_id].masked_name
    # The ID number is for the wire only: never in the stored record.
    assert "id_number" not in json.dumps(record.payload)


def test_an_endpoint_without_id_numbers_gets_none(window_with_five, wire):
    air = DownstreamEndpointFactory(name="air", send_id_number=False)
    window, _scans = window_with_five
    exposure_run(window_id=window.pk, at=T0)

    _send(air)

    (call,) = wire.calls
    assert call["key"].endswith("-p1") and all("id_number" not in item for item in call["body"]["cases"])


def test_a_failed_page_is_retried_and_no_page_is_sent_twice(window_with_five, wire, small_pages):
    rail = DownstreamEndpointFactory(name="rail", url="http://rail.test/")
    window, _scans = window_with_five
    exposure_run(window_id=window.pk, at=T0)
    key = f"window-{window.pk}-v1-raised"
    wire.fail = {f"{key}-p2"}

    assert _send(rail) == 0
    delivery = OutboxDelivery.objects.get()
    assert (delivery.state, delivery.pages_done, delivery.attempts) == ("failed", 1, 1)
    assert delivery.next_attempt_at > timezone.now()

    # Not due before its backoff: nothing is sent.
    assert outbox.deliver_endpoint(endpoint_id=rail.pk) == 0 and len(wire.calls) == 2

    assert _send(rail) == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.pages_done, delivery.attempts) == ("delivered", 3, 2)
    # Page 1 once, page 2 refused then retried with the same key, page 3 once.
    assert wire.keys() == [f"{key}-p1", f"{key}-p2", f"{key}-p2", f"{key}-p3"]
    assert list(OutboxAttempt.objects.filter(delivery=delivery).order_by("id").values_list("ok", flat=True)) == [
        True, False, True, True]
    # Delivered: a further dispatch, or a second worker, sends nothing.
    assert _send(rail) == 0 and outbox.deliver(delivery_id=delivery.pk) is None and len(wire.calls) == 4


def test_a_worker_that_lost_its_lease_does_not_count_pages_for_the_new_one(window_with_five, wire, small_pages):
    DownstreamEndpointFactory(name="rail", url="http://rail.test/")
    window, _scans = window_with_five
    exposure_run(window_id=window.pk, at=T0)
    delivery = OutboxDelivery.objects.get()
    stale, _body = outbox.claim(delivery_id=delivery.pk)
    # The lease ran out (worker stalled); another worker claims the row and sends it all.
    _make_due()
    assert outbox.deliver(delivery_id=delivery.pk).state == "delivered"

    # The stale worker wakes up and finishes its page: its outcome is not recorded over the new one.
    assert outbox._record_outcome(stale, status_code=200, error="", duration=1, done=False) is False
    delivery.refresh_from_db()
    assert (delivery.state, delivery.pages_done) == ("delivered", 3)


def test_a_lift_waits_while_the_batch_with_its_raise_is_undelivered(window_with_five, wire):
    rail = DownstreamEndpointFactory(name="rail", url="http://rail.test/")
    window, scans = window_with_five
    exposure_run(window_id=window.pk, at=T0)
    case = PopupCase.objects.get(resident_id=scans[0].resident_id, popup_type=3)
    popup_lift(case=case, actor_label="community", reason="排查无风险", at=T0 + dt.timedelta(hours=1))
    lift = OutboxDelivery.objects.get(record__case=case, record__kind="lifted")
    # An unrelated resident's record is not held back by the batch.
    other = PopupCase.objects.create(resident=ResidentFactory(), popup_type=3, dedupe_key="other", cause={},
                                     source="venue", raised_at=T0)
    outbox.outbox_record(case=other, kind="raised", at=T0)
    other_delivery = OutboxDelivery.objects.get(record__case=other)
    wire.down = True

    _send(rail)

    batch = OutboxDelivery.objects.get(resident__isnull=True)
    lift.refresh_from_db()
    assert batch.state == "failed" and lift.state == "pending" and lift.attempts == 0
    _make_due()
    assert set(outbox.due_ids(endpoint_id=rail.pk)) == {batch.pk, other_delivery.pk}  # not the lift
    assert [c["key"] for c in wire.calls if "lifted" in c["key"]] == []
    assert OutboxDelivery.objects.get(pk=other_delivery.pk).attempts == 1  # tried, not held back
    OutboxDelivery.objects.filter(pk=other_delivery.pk).update(state="delivered")

    # Dead is still undelivered: the lift keeps waiting (a requeued raise must not land after it).
    OutboxDelivery.objects.filter(pk=batch.pk).update(state="dead")
    _make_due()
    assert lift.pk not in outbox.due_ids(endpoint_id=rail.pk)

    outbox.delivery_requeue(deliveries=OutboxDelivery.objects.filter(pk=batch.pk))
    wire.down = False
    _send(rail)

    lift.refresh_from_db()
    assert lift.state == "delivered"
    keys = wire.keys()
    assert keys.index(f"popup-{case.pk}-lifted") > keys.index(f"window-{window.pk}-v1-raised-p1")


def test_a_batch_waits_for_an_earlier_undelivered_record_of_one_of_its_residents(wire):
    rail = DownstreamEndpointFactory(name="rail", url="http://rail.test/")
    resident = ResidentFactory()
    earlier = PopupCase.objects.create(resident=resident, popup_type=3, dedupe_key="earlier", cause={},
                                       source="venue", raised_at=T0)
    outbox.outbox_record(case=earlier, kind="raised", at=T0)
    venue = VenueFactory()
    VenueScanFactory(venue=venue, resident=resident, scanned_at=cst(2022, 9, 1, 11))
    window = services.risk_window_create(venue=venue, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 14),
                                         risk_level="high", reason="r", actor=None, at=T0)
    exposure_run(window_id=window.pk, at=T0)
    single = OutboxDelivery.objects.get(resident=resident)
    batch = OutboxDelivery.objects.get(resident__isnull=True)
    OutboxDelivery.objects.filter(pk=single.pk).update(state="failed")
    _make_due()
    OutboxDelivery.objects.filter(pk=single.pk).update(next_attempt_at=T0 + dt.timedelta(days=3650))

    assert outbox.due_ids(endpoint_id=rail.pk) == []

    OutboxDelivery.objects.filter(pk=single.pk).update(state="delivered")
    assert outbox.due_ids(endpoint_id=rail.pk) == [batch.pk]


def test_withdrawal_after_a_batch_goes_per_popup_after_the_batch(window_with_five, wire):
    rail = DownstreamEndpointFactory(name="rail", url="http://rail.test/")
    window, scans = window_with_five
    exposure_run(window_id=window.pk, at=T0)
    services.risk_window_withdraw(window=window, actor=None, reason="误报", at=T0 + dt.timedelta(hours=1))

    result = exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=1))

    assert result.withdrawn == 5 and result.batch == ""
    withdrawn = OutboxRecord.objects.filter(kind="withdrawn")
    assert withdrawn.count() == 5 and all(r.case_ids is None for r in withdrawn)
    assert OutboxRecord.objects.filter(kind="raised").count() == 1  # the batch, not rewritten
    _send(rail)
    keys = wire.keys()
    assert keys[0] == f"window-{window.pk}-v1-raised-p1"
    assert sorted(keys[1:]) == sorted(f"popup-{r.case_id}-withdrawn" for r in withdrawn)
    assert set(OutboxDelivery.objects.values_list("state", flat=True)) == {"delivered"}
