"""A batch runs with Python's cyclic garbage collector paused (ingest.collector_paused) and gives
it back as it found it: on after the batch if it was on, off if it was off, on only when the
last of several batches running at once in threads has ended, and on after a batch that failed."""

import datetime as dt
import gc
import threading

import pytest
from django.utils import timezone

from healthkit import ingest
from healthkit.errors import ApplicationError
from tests.factories import ResidentFactory, make_id_number

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _collector_restored():
    was_on = gc.isenabled()
    yield
    gc.enable() if was_on else gc.disable()


def _record(number):
    now = timezone.now()
    return {"id_number": number, "lab": "lab-1", "sample_id": "S1", "sampled_at": (now - dt.timedelta(hours=3)).isoformat(),
            "resulted_at": (now - dt.timedelta(hours=1)).isoformat(), "result": "negative"}


def test_a_batch_pauses_the_collector_and_gives_it_back_as_it_was(monkeypatch):
    number = make_id_number()
    ResidentFactory(id_number=number)
    during = []
    hold = ingest._hold_result_residents
    monkeypatch.setattr(ingest, "_hold_result_residents", lambda on: during.append(gc.isenabled()) or hold(on))
    # given the collector on, a batch runs with it off and leaves it on
    gc.enable()
    assert ingest.ingest(kind="test_results", records=[_record(number)], evaluate=False).accepted == 1
    assert during == [False, False] and gc.isenabled()
    # a batch refused whole leaves it on too
    with pytest.raises(ApplicationError):
        ingest.ingest(kind="no such kind", records=[])
    assert gc.isenabled()
    # and one that finds it off leaves it off
    gc.disable()
    ingest.ingest(kind="test_results", records=[_record(number)], evaluate=False)
    assert not gc.isenabled()


def test_batches_in_threads_give_the_collector_back_when_the_last_ends():
    gc.enable()
    first_in, second_in, first_may_end, second_may_end = (threading.Event() for _ in range(4))
    seen = {}

    def batch(name, entered, may_end):
        with ingest.collector_paused():
            entered.set()
            may_end.wait(10)
        seen[name] = gc.isenabled()

    first = threading.Thread(target=batch, args=("first", first_in, first_may_end))
    second = threading.Thread(target=batch, args=("second", second_in, second_may_end))
    first.start()
    first_in.wait(10)
    second.start()
    second_in.wait(10)
    # the first ends while the second still runs: still off
    first_may_end.set()
    first.join(10)
    assert seen["first"] is False and not gc.isenabled()
    # the second ends: on again
    second_may_end.set()
    second.join(10)
    assert seen["second"] is True and gc.isenabled()


class _Cycle:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def test_overlapping_batches_never_keep_the_collector_off_for_good(monkeypatch):
    import weakref

    gc.enable()
    clock = [1000.0]
    monkeypatch.setattr(ingest.time, "monotonic", lambda: clock[0])
    with ingest.collector_paused():  # a long batch in one thread...
        garbage = _Cycle()
        gone = weakref.ref(garbage)
        del garbage
        with ingest.collector_paused():  # ...another starts soon after: no collection yet
            pass
        assert gone() is not None and not gc.isenabled()
        clock[0] += ingest.COLLECTOR_PAUSE_MAX + 1
        with ingest.collector_paused():  # one starting after the limit collects first
            assert gone() is None
            assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_found_off_is_never_run_by_the_pause(monkeypatch):
    import weakref

    gc.disable()
    clock = [1000.0]
    monkeypatch.setattr(ingest.time, "monotonic", lambda: clock[0])
    with ingest.collector_paused():
        garbage = _Cycle()
        gone = weakref.ref(garbage)
        del garbage
        clock[0] += ingest.COLLECTOR_PAUSE_MAX + 1
        with ingest.collector_paused():
            assert gone() is not None  # whoever turned it off decides when it runs
    assert not gc.isenabled()
    gc.collect()
