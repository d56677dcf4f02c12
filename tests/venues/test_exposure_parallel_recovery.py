"""A parallel first run whose leader fails after the second half committed (the window of the
two commits) leaves that half's popups written but not announced, with a pending trace. The
window's next run announces them exactly once: in the version's batch with its own raises, or,
when the window was corrected meanwhile, in the batch of the version they were raised for and
before any withdrawal of them; and the trace is settled."""

import pytest
from django.db import connection

from healthkit.models import OutboxDelivery, OutboxRecord, PopupCase, PopupEvent
from tests.factories.venues import cst
from tests.venues.parallel_helpers import (
    RUN_AT,
    batch_lists_in_case_order,
    raised_announcements,
    window_with_visitors,
)
from venues import exposure, services
from venues.exposure import cause_as_raised, exposure_run, exposure_run_due
from venues.models import Exposure, ExposurePending, RiskWindow, RiskWindowEvent

pytestmark = pytest.mark.django_db(transaction=True)


class _LeaderLost(Exception):
    pass


def _crash_after_the_second_half_committed(window, monkeypatch) -> list[int]:
    """Run the first run with the leader failing just before it announces; returns the
    residents whose popups the second half committed."""
    announce = exposure._announce

    def fail(**kwargs):
        raise _LeaderLost

    monkeypatch.setattr(exposure, "_announce", fail)
    with pytest.raises(_LeaderLost):
        exposure_run(window_id=window.pk, at=RUN_AT)
    monkeypatch.setattr(exposure, "_announce", announce)
    return sorted(PopupCase.objects.values_list("resident_id", flat=True))


def test_the_committed_half_is_left_traced_and_reads_its_whole_cause(parallel, monkeypatch):
    window, residents = window_with_visitors()
    committed = _crash_after_the_second_half_committed(window, monkeypatch)
    # then only the second connection's half (even ids) is written, not announced, and traced
    assert committed == sorted(r.pk for r in residents if r.pk % 2 == 0)
    assert Exposure.objects.count() == PopupEvent.objects.count() == len(committed)
    assert not OutboxRecord.objects.exists()
    assert not RiskWindowEvent.objects.filter(kind=RiskWindowEvent.Kind.EXPOSURE).exists()
    assert RiskWindow.objects.get(pk=window.pk).exposure_due
    trace = ExposurePending.objects.get()
    assert (trace.window_id, trace.version, trace.at, trace.raised) == (window.pk, 1, RUN_AT, len(committed))
    # and a raised event reads the whole cause from the trace
    cause = cause_as_raised(PopupEvent.objects.filter(kind="raised").first())
    assert cause["venue_code"] == window.venue.code and cause["window"]["id"] == window.pk and cause["scan"]


@pytest.mark.parametrize("later", [False, True], ids=["same-instant", "later"])
def test_the_next_run_announces_both_halves_once_in_the_versions_batch(parallel, monkeypatch, later):
    window, residents = window_with_visitors()
    committed = _crash_after_the_second_half_committed(window, monkeypatch)
    # when the window's next run comes (the task's retry, the beat sweep)
    result = exposure_run(window_id=window.pk, at=cst(2022, 9, 2, 10) if later else RUN_AT)
    # then the rest is raised and all are announced once, in ONE batch of version 1
    assert parallel == [False] or parallel == []  # not a first run any more: one statement
    assert result.raised == len(residents) - len(committed) and result.recovered == len(committed)
    batch = OutboxRecord.objects.get(idempotency_key=f"window-{window.pk}-v1-raised")
    assert sorted(batch.case_ids) == sorted(PopupCase.objects.values_list("pk", flat=True))
    assert raised_announcements() == sorted(PopupCase.objects.values_list("pk", flat=True))
    assert OutboxRecord.objects.count() == 1 and OutboxDelivery.objects.filter(record=batch).count() == 2
    assert result.batch == batch.idempotency_key and result.deliveries == 2
    assert batch_lists_in_case_order()
    assert not ExposurePending.objects.exists()
    # and every raised event reads its whole cause; the interrupted run is in the trace
    assert all(cause_as_raised(e)["venue_code"] == window.venue.code for e in PopupEvent.objects.filter(kind="raised"))
    assert RiskWindowEvent.objects.filter(kind=RiskWindowEvent.Kind.EXPOSURE, at=RUN_AT,
                                          data__recovered=True).count() == 1
    # and a further run announces nothing again
    again = exposure_run(window_id=window.pk, at=cst(2022, 9, 2, 11))
    assert not again.changed and OutboxRecord.objects.count() == 1


def test_after_a_correction_the_committed_half_is_announced_at_its_version_before_its_withdrawals(
        parallel, monkeypatch):
    window, residents = window_with_visitors()
    committed = _crash_after_the_second_half_committed(window, monkeypatch)
    # given the window corrected meanwhile to its last hour (most visits fall outside); its run
    # is made below, not kicked at once
    monkeypatch.setattr(services, "_kick", lambda window_id: None)
    window = services.risk_window_correct(window=RiskWindow.objects.get(pk=window.pk), starts_at=cst(2022, 9, 1, 13),
                                          ends_at=cst(2022, 9, 1, 14), risk_level="high", reason="缩小",
                                          correction="narrowed", actor=None)
    # when the window's next run comes
    result = exposure_run(window_id=window.pk, at=cst(2022, 9, 2, 10))
    # then the committed half is announced once, as raised at version 1, in that version's batch
    v1 = OutboxRecord.objects.get(idempotency_key=f"window-{window.pk}-v1-raised")
    first_half = sorted(PopupCase.objects.filter(resident_id__in=committed).values_list("pk", flat=True))
    assert sorted(v1.case_ids) == first_half
    assert raised_announcements() == sorted(PopupCase.objects.values_list("pk", flat=True))
    assert result.recovered == len(committed) and not ExposurePending.objects.exists()
    # and those outside the corrected window are withdrawn, each withdrawal after the batch
    withdrawn = PopupCase.objects.filter(resident_id__in=committed, state="withdrawn")
    assert withdrawn.exists() and result.withdrawn == withdrawn.count()
    first_batch_delivery = OutboxDelivery.objects.filter(record=v1).order_by("pk").first().pk
    assert all(d > first_batch_delivery for d in OutboxDelivery.objects.filter(
        record__kind="withdrawn").values_list("pk", flat=True))
    # and the other half inside the corrected window is raised at version 2, in its own batch
    v2 = OutboxRecord.objects.filter(idempotency_key=f"window-{window.pk}-v2-raised").first()
    others_inside = PopupCase.objects.exclude(resident_id__in=committed)
    assert sorted(v2.case_ids if v2 else []) == sorted(others_inside.values_list("pk", flat=True))


def test_the_beat_sweep_finds_a_window_with_a_trace_even_if_not_marked_due(parallel, monkeypatch):
    window, residents = window_with_visitors()
    _crash_after_the_second_half_committed(window, monkeypatch)
    RiskWindow.objects.filter(pk=window.pk).update(exposure_due=False)
    (result,) = exposure_run_due(at=cst(2022, 9, 2, 10))
    assert result.window_id == window.pk and result.recovered
    assert raised_announcements() == sorted(PopupCase.objects.values_list("pk", flat=True))
    assert PopupCase.objects.count() == len(residents)


def test_a_popup_lifted_before_the_recovery_is_not_announced_raised(parallel, monkeypatch):
    window, _residents = window_with_visitors()
    committed = _crash_after_the_second_half_committed(window, monkeypatch)
    lifted = PopupCase.objects.get(resident_id=committed[0])
    with connection.cursor() as cursor:  # lifted by hand, as the community would
        cursor.execute("UPDATE healthkit_popupcase SET state = 'lifted', lifted_at = now() WHERE id = %s", [lifted.pk])
    exposure_run(window_id=window.pk, at=cst(2022, 9, 2, 10))
    assert lifted.pk not in raised_announcements()
    assert len(raised_announcements()) == PopupCase.objects.count() - 1
