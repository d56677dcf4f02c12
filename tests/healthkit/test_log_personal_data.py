"""No ID number or mobile phone reaches a log, wherever someone put it: a phone or an ID number
typed as a reference into an address (`/api/v1/appeals/13800138000/`, an Open311 request id, a
console page), into a query string (a filter box; the access log keeps the query), or passed to a
log call. Before, the filter masked credentials only: a phone in a path was written out in
django.request's "Not Found" warning, and any number in an access-log line stayed."""

import io
import logging

import pytest
from django.urls import reverse

from communities.models import User
from healthkit import logfilters
from tests.factories import UserFactory
from tests.test_url_role_matrix import MATRIX

pytestmark = pytest.mark.django_db

ID_NUMBER = "11010519491231002X"
PHONE = "13800138000"
PERSONAL = (ID_NUMBER, ID_NUMBER.lower(), PHONE)


@pytest.fixture
def captured():
    """A handler like the deployment's on the loggers requests write to, filtered by install()."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    loggers = [logging.getLogger(name) for name in ("", "django.request", "django.server", "healthkit")]
    for logger in loggers:
        logger.addHandler(handler)
    logfilters.install()
    yield stream
    for logger in loggers:
        logger.removeHandler(handler)


def _leaks(text: str) -> list[str]:
    return [value for value in PERSONAL if value in text]


def test_personal_data_typed_into_addresses_never_reaches_the_log(client, captured):
    client.force_login(UserFactory(role=User.Role.OPERATOR))
    for value in (PHONE, ID_NUMBER):
        for path in (f"/api/v1/appeals/{value}/", f"/open311/v2/requests/{value}.json", f"/console/appeals/{value}/",
                     f"/console/popups/{value}/", f"/appeals/evidence-link/{value}/", f"/clearance/r/{value}/",
                     f"/{value}/", f"/api/v1/appeals/{value}/close/"):
            client.get(path)
            client.post(path)
    # every URL of the project with the values in its query string (a filter box, a typo'd link)
    for name, (key, _expected) in MATRIX.items():
        if key is None and name != "admin:*":
            client.get(reverse(name), {"reference": ID_NUMBER, "q": PHONE, "community": f"+86 {PHONE}"})
    text = captured.getvalue()
    assert "Not Found" in text  # the warnings were written, masked
    assert not _leaks(text), [line for line in text.splitlines() if _leaks(line)][:10]


@pytest.mark.parametrize("line", [
    f'"GET /console/appeals/?reference={ID_NUMBER}&community={PHONE} HTTP/1.1" 200 5120',
    f'"GET /console/appeals/?reference={ID_NUMBER.lower()} HTTP/1.1" 200 5120',
    f'"GET /console/popups/?q=%2B86%20{PHONE} HTTP/1.1" 200 10',
    f'"GET /api/v1/appeals/{PHONE}/ HTTP/1.1" 404 40',
    f"look-up for {ID_NUMBER} / +86-{PHONE} failed",
])
def test_access_log_lines_and_messages_with_personal_data_are_masked(line):
    assert not _leaks(logfilters.mask(line)), logfilters.mask(line)


@pytest.mark.parametrize("line", [
    "2026-12-01 19:20:00,123 INFO [req=3f1c0a9b1e2d4c5f8a7b6c5d4e3f2a1b] 10000 records in 1380 ms",
    '"GET /console/appeals/1234/ HTTP/1.1" 200 51200',
    "appeal T45A3564D routed; batch lab-7/2022-06-01/001; sample S0000012; 15 of 1000000",
    "epoch 1733080800123 ms, pk 12345678901234",
])
def test_other_numbers_are_left_alone(line):
    assert logfilters.mask(line) == line
