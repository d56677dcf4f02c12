import pytest

from healthkit import ingest


@pytest.fixture
def small_ingest_chunks(monkeypatch):
    """Ingest chunks made small, so that a few records stream and make several look-up chunks."""
    monkeypatch.setattr(ingest, "LOOKUP_CHUNK", 2)
    monkeypatch.setattr(ingest, "STREAM_MIN", 3)
    yield
    ingest.close_lookup_connection()  # the test database is dropped at the end: no session left on it
