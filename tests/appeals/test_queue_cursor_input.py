"""The queue's `after` cursor comes from the URL, so anyone can craft it: whatever it holds, a
malformed cursor restarts from the first page, for every ordering, never a server error."""

import base64
import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from appeals.models import Appeal
from appeals.selectors import ORDERINGS, seek_page
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def _cursor(value) -> str:
    raw = value if isinstance(value, str) else json.dumps(value)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


NOW = "2022-11-20T08:00:00+08:00"
MALFORMED = [
    [None, 3], [None, None], [NOW, None], [1, None, 3], [None, NOW, 3], [True, NOW, 3], [1, True, 3],
    [1, NOW, 10**30], [10**30, NOW, 1], [9, NOW, 1], [NOW, -(10**30)], [NOW, 0], ["2022-11-20T08:00:00", 3],
    ["not a time", 3], [{"a": 1}, 3], [[NOW], 3], [1.5, NOW, 3], ["NaN", 3], {"x": 1}, "x", 7, [],
    "[" * 5000 + "]" * 5000,
]
# Well formed but past either end of time: a correct (empty or full) page, never an error.
EXTREME = [["0001-01-01T00:00:00+14:00", 1], ["9999-12-31T23:59:59-14:00", 1],
           [1, "9999-12-31T23:59:59-14:00", 1], [3, "0001-01-01T00:00:00+14:00", 1]]


def _two_appeals():
    return (AppealFactory(created_at=timezone.now() - dt.timedelta(hours=2)),
            AppealFactory(created_at=timezone.now() - dt.timedelta(hours=1)))


@pytest.mark.parametrize("ordering", list(ORDERINGS))
@pytest.mark.parametrize("payload", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_cursor_restarts_from_the_first_page(client, operator, ordering, payload):
    # given two open appeals
    first, second = _two_appeals()
    client.force_login(operator)
    # when the queue is asked for the page "after" a crafted cursor
    response = client.get(reverse("appeals:queue"), {"order": ordering, "after": _cursor(payload)})
    # then it answers with the first page (both appeals), not a 500
    assert response.status_code == 200
    body = response.content.decode()
    assert first.reference in body and second.reference in body


@pytest.mark.parametrize("ordering", list(ORDERINGS))
@pytest.mark.parametrize("payload", EXTREME, ids=range(len(EXTREME)))
def test_cursor_at_the_ends_of_time_is_answered(client, operator, ordering, payload):
    _two_appeals()
    client.force_login(operator)
    assert client.get(reverse("appeals:queue"), {"order": ordering, "after": _cursor(payload)}).status_code == 200


@pytest.mark.parametrize("after", ["%%%", "ä", "a" * 3, "=" * 8, "\x00"])
def test_undecodable_cursor_restarts_from_the_first_page(client, operator, after):
    appeal = AppealFactory()
    client.force_login(operator)
    response = client.get(reverse("appeals:queue"), {"order": "sla", "after": after})
    assert response.status_code == 200 and appeal.reference in response.content.decode()


@pytest.mark.parametrize("ordering", list(ORDERINGS))
def test_a_real_cursor_still_pages(ordering):
    for hours in (3, 2, 1):
        AppealFactory(created_at=timezone.now() - dt.timedelta(hours=hours))
    qs = Appeal.objects.all()
    page = seek_page(qs, ordering=ordering, size=2)
    rest = seek_page(qs, ordering=ordering, cursor=page.next_cursor, size=2)
    assert len(page.rows) == 2 and len(rest.rows) == 1
    assert {a.pk for a in page.rows} | {a.pk for a in rest.rows} == set(qs.values_list("pk", flat=True))
