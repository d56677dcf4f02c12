"""Shared by the tests of the exposure job's parallel first run (venues.exposure): a window
with visitors of both halves (even and odd resident ids), the rows the job writes read back
without the ids that differ between two runs by nature. The `parallel` fixture (conftest.py)
turns the parallel path on and records which way each run went."""

import datetime as dt
import threading

from django.db import connection

from healthkit import second_connection
from healthkit.models import OutboxDelivery, OutboxRecord, PopupCase, PopupEvent
from tests.factories import ResidentFactory
from tests.factories.healthkit import DownstreamEndpointFactory
from tests.factories.venues import RiskWindowFactory, VenueFactory, VenueScanFactory, cst
from venues.exposure import exposure_run
from venues.models import Exposure, RiskWindowEvent

RUN_AT = cst(2022, 9, 2, 9)


def window_with_visitors(count: int = 8):
    """A window with `count` visitors (ids of both parities), one of them scanning twice, one
    scan outside the window, and two active endpoints."""
    DownstreamEndpointFactory(), DownstreamEndpointFactory()
    venue = VenueFactory()
    window = RiskWindowFactory(venue=venue, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 14))
    residents = [ResidentFactory() for _ in range(count)]
    for n, resident in enumerate(residents):
        VenueScanFactory(venue=venue, resident=resident, scanned_at=cst(2022, 9, 1, 10 + n % 4, n))
    VenueScanFactory(venue=venue, resident=residents[0], scanned_at=cst(2022, 9, 1, 13, 30))
    VenueScanFactory(venue=venue, resident=residents[1], scanned_at=cst(2022, 9, 1, 15))
    assert {r.pk % 2 for r in residents} == {0, 1}
    return window, residents


def rows() -> dict:
    """Everything the job wrote, popups named by their resident (ids differ between runs)."""
    resident_of = dict(PopupCase.objects.values_list("pk", "resident_id"))
    return {
        "popups": sorted(PopupCase.objects.values_list(
            "resident_id", "popup_type", "dedupe_key", "cause", "source", "state", "policy_id", "raised_at",
            "lifted_at")),
        "events": sorted((resident_of[c], *rest) for c, *rest in PopupEvent.objects.values_list(
            "case_id", "kind", "from_state", "to_state", "actor_id", "actor_label", "reason", "data", "at")),
        "exposures": sorted((resident_of[c], *rest) for c, *rest in Exposure.objects.values_list(
            "case_id", "window_id", "resident_id", "scan_id", "scanned_at", "raised_at", "withdrawn_at",
            "flagged_version")),
        # a batch lists its popups in case order, which follows the order the halves were written
        # in: compared as sets here, the order and alignment checked by batch_lists_in_case_order()
        "records": sorted(
            (key, kind, resident_of.get(case), resident, popup_type, at, payload,
             sorted(resident_of[c] for c in case_ids or []), sorted(resident_ids or []))
            for key, kind, case, resident, popup_type, at, payload, case_ids, resident_ids in
            OutboxRecord.objects.values_list("idempotency_key", "kind", "case_id", "resident_id", "popup_type",
                                             "at", "payload", "case_ids", "resident_ids")),
        "deliveries": sorted(OutboxDelivery.objects.values_list(
            "record__idempotency_key", "endpoint_id", "resident_id", "state", "attempts", "pages_done")),
        "window_events": sorted((kind, actor_label, reason, str(data), at) for kind, actor_label, reason, data, at in
                                RiskWindowEvent.objects.filter(kind=RiskWindowEvent.Kind.EXPOSURE).values_list(
                                    "kind", "actor_label", "reason", "data", "at")),
    }


def raised_announcements() -> list[int]:
    """Every 'raised' announcement of a popup, single or in a batch (a popup twice = twice here)."""
    singles = list(OutboxRecord.objects.filter(kind="raised", case__isnull=False).values_list("case_id", flat=True))
    batches = [c for ids in OutboxRecord.objects.filter(kind="raised", case__isnull=True)
               .values_list("case_ids", flat=True) for c in ids]
    return sorted(singles + batches)


def batch_lists_in_case_order() -> bool:
    """Every batch record lists its popups by ascending id, each beside its own resident."""
    resident_of = dict(PopupCase.objects.values_list("pk", "resident_id"))
    return all(case_ids == sorted(case_ids) and resident_ids == [resident_of[c] for c in case_ids]
               for case_ids, resident_ids in OutboxRecord.objects.filter(case__isnull=True)
               .values_list("case_ids", "resident_ids"))


def job_in_thread(window_id: int, outcome: dict, at: dt.datetime = RUN_AT) -> threading.Thread:
    """The exposure job started in a thread of its own (its own connections, closed at the end),
    as a worker runs it beside another session; `outcome` receives its result or its error."""
    def job() -> None:
        try:
            outcome["result"] = exposure_run(window_id=window_id, at=at)
        except Exception as exc:  # noqa: BLE001 - the test asserts on it
            outcome["error"] = exc
        finally:
            second_connection.close_second_connection()
            connection.close()

    thread = threading.Thread(target=job)
    thread.start()
    return thread
