"""A database session killed in the middle of an ingest batch (`pg_terminate_backend`, as a
restart or a failover does): the lab's call is a 503 with Retry-After, nothing of the batch is
kept (no half-written batch, the batch id is free), and the same call sent again is taken whole.

The streamed way writes through the driver directly (COPY on the request's connection, the
resident look-ups on a second one), so the failure is psycopg's own error, not Django's wrapper
of it: it was a 500 with a traceback, which a lab's client does not retry."""

import datetime as dt

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communities.models import User
from healthkit import ingest
from healthkit.models import IngestBatch, TestResult
from tests.concurrency import terminate_backend
from tests.factories import ResidentFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("small_ingest_chunks")]


def _batch(residents) -> dict:
    now = timezone.now()
    return {"batch_id": "lab-7-0001", "records": [
        {"id_number": r.reveal_id_number(), "lab": "lab-7", "sample_id": f"S{n}",
         "sampled_at": (now - dt.timedelta(hours=10)).isoformat(),
         "resulted_at": (now - dt.timedelta(hours=8)).isoformat(), "result": "negative"}
        for n, r in enumerate(residents)]}


@pytest.mark.parametrize("killed", ["the COPY's connection", "the look-up connection"])
def test_a_session_killed_mid_batch_is_a_503_keeps_nothing_and_the_retry_is_taken_whole(monkeypatch, killed):
    # given a lab's client and a batch large enough to stream
    user = UserFactory(role=User.Role.INTEGRATION)
    lab = APIClient(HTTP_ACCEPT_LANGUAGE="en", raise_request_exception=False)
    lab.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    residents = [ResidentFactory() for _ in range(8)]
    body = _batch(residents)
    streamed = ingest._streamed_rows

    def killed_mid_stream(*args, **kwargs):
        for n, row in enumerate(streamed(*args, **kwargs)):
            if n == 3:  # a few rows are in the COPY already
                if killed == "the look-up connection":
                    terminate_backend(ingest._lookup_connection().info.backend_pid)
                else:
                    terminate_backend(connection.connection.info.backend_pid)
            yield row

    monkeypatch.setattr(ingest, "_streamed_rows", killed_mid_stream)
    # when the session dies half-way through the batch
    response = lab.post(reverse("api-ingest-test-results"), body, format="json")
    # then the lab is told to try again, and nothing of the batch was kept
    assert response.status_code == 503, response.content[:300]
    assert int(response["Retry-After"]) > 0
    assert response.json()["detail"] == ("The service is briefly unavailable. Please try again in a few seconds.")
    connection.close()  # the next request starts on a new connection (close_old_connections)
    assert TestResult.objects.count() == 0
    assert not IngestBatch.objects.filter(batch_id="lab-7-0001").exists()
    # and the same call again is taken whole
    monkeypatch.setattr(ingest, "_streamed_rows", streamed)
    again = lab.post(reverse("api-ingest-test-results"), body, format="json")
    assert again.status_code == 200, again.content[:300]
    assert again.json()["accepted"] == 8
    assert TestResult.objects.count() == 8
