"""Fixtures of the venues tests."""

import pytest

from healthkit import second_connection
from venues import exposure


@pytest.fixture
def parallel(settings, monkeypatch):
    """The parallel path on for any window with 2 scans or more; returns the list of the ways
    runs went (True: parallel, False: asked for but fell back to one statement)."""
    settings.EXPOSURE_PARALLEL_MIN = 2
    ways: list[bool] = []
    real = exposure._parallel_first_run
    monkeypatch.setattr(exposure, "_parallel_first_run", lambda **kw: ways.append(real(**kw)) or ways[-1])
    yield ways
    second_connection.close_second_connection()  # the test database is dropped at the end
