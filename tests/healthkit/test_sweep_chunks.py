"""A full sweep raises at most ENGINE_SWEEP_MAX_RAISES popups per transaction: each chunk
commits and is logged, the next takes the rest; a run stopped (or killed) between chunks keeps
what it committed, and the next run, full again, goes on from there without raising anything
twice. The chunked sweep ends where the unchunked one does."""

import datetime as dt
from unittest import mock

import pytest
from django.db import transaction

from healthkit import engine
from healthkit.models import EngineSweep, OutboxRecord, PopupCase, PopupEvent
from tests.factories.healthkit import ArrivalFactory, DownstreamEndpointFactory, cst

pytestmark = pytest.mark.django_db
ARRIVED = cst(2022, 6, 1, 9)
DEADLINE = ARRIVED + dt.timedelta(hours=72)
HOUR = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def _small_chunks(settings):
    settings.ENGINE_SWEEP_MAX_RAISES = 2
    settings.ENGINE_FULL_SWEEP_HOURS = 24 * 365


@pytest.fixture
def arrivals():
    DownstreamEndpointFactory()
    return [ArrivalFactory(arrived_at=ARRIVED + dt.timedelta(minutes=n)) for n in range(5)]


def _outcome() -> list[tuple]:
    return [(c.resident_id, c.popup_type, c.state, c.raised_at, c.cause,
             [(e.kind, e.to_state, e.at, e.data) for e in c.events.order_by("pk")],
             list(OutboxRecord.objects.filter(case=c).values_list("kind", "at")))
            for c in PopupCase.objects.order_by("resident_id", "popup_type")]


def _chunks() -> list[tuple]:
    return list(EngineSweep.objects.order_by("pk").values_list("full", "more", "raised"))


def test_full_sweep_raises_in_committed_chunks_and_ends_where_one_statement_would(arrivals, settings):
    with transaction.atomic():
        settings.ENGINE_SWEEP_MAX_RAISES = None
        engine.sweep(at=DEADLINE + HOUR, full=True)
        unchunked = _outcome()
        transaction.set_rollback(True)
    settings.ENGINE_SWEEP_MAX_RAISES = 2

    result = engine.sweep(at=DEADLINE + HOUR, full=True)

    assert (result.raised, result.more) == (5, False)
    assert _chunks() == [(True, True, 2), (True, True, 2), (True, False, 1)]
    assert _outcome() == unchunked
    assert PopupCase.objects.filter(state="active").count() == 5
    assert PopupEvent.objects.filter(kind="raised").count() == 5
    assert OutboxRecord.objects.filter(kind="raised").count() == 5


def test_a_run_stopped_between_chunks_is_continued_by_the_next_run_which_is_full_again(arrivals, settings):
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 0  # no time for a second chunk in the same run

    first = engine.sweep(at=DEADLINE + HOUR)
    assert (first.raised, first.more) == (2, True)
    # an hour later no deadline is due: only because the previous run left raises is it full
    second = engine.sweep(at=DEADLINE + 2 * HOUR)
    third = engine.sweep(at=DEADLINE + 3 * HOUR)
    fourth = engine.sweep(at=DEADLINE + 4 * HOUR)

    assert [(r.raised, r.more) for r in (second, third)] == [(2, True), (1, False)]
    assert _chunks()[-1] == (False, False, 0) and fourth.raised == 0  # back to due-only sweeps
    assert sorted(PopupCase.objects.values_list("resident_id", flat=True)) == sorted(
        a.resident_id for a in arrivals)
    assert OutboxRecord.objects.filter(kind="raised").count() == 5


def test_a_chunk_that_fails_loses_only_itself(arrivals):
    real = engine.evaluate
    calls = []

    def second_chunk_dies(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            real(**kwargs)
            raise RuntimeError("worker killed")
        return real(**kwargs)

    with mock.patch.object(engine, "evaluate", side_effect=second_chunk_dies), pytest.raises(RuntimeError):
        engine.sweep(at=DEADLINE + HOUR, full=True)

    assert PopupCase.objects.count() == 2 and _chunks() == [(True, True, 2)]
    engine.sweep(at=DEADLINE + 2 * HOUR)
    assert PopupCase.objects.count() == 5 and PopupEvent.objects.filter(kind="raised").count() == 5
