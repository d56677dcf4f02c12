"""The queue's `after` cursor comes from the URL, so anyone can craft it: whatever it holds, a
cursor the page did not write is refused (400, said above the filters, nothing listed), for
every ordering, never a server error and never read in silence as the first page."""

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
def test_malformed_cursor_is_refused_and_lists_nothing(client, operator, ordering, payload):
    # given two open appeals
    first, second = _two_appeals()
    client.force_login(operator)
    # when the queue is asked for the page "after" a crafted cursor
    response = client.get(reverse("appeals:queue"), {"order": ordering, "after": _cursor(payload)},
                          HTTP_ACCEPT_LANGUAGE="en")
    # then it says so and lists nothing, not a 500
    assert response.status_code == 400
    body = response.content.decode()
    assert "This link to the next page is not one this page wrote" in body
    assert first.reference not in body and second.reference not in body


@pytest.mark.parametrize("ordering", list(ORDERINGS))
@pytest.mark.parametrize("payload", EXTREME, ids=range(len(EXTREME)))
def test_cursor_at_the_ends_of_time_is_answered(client, operator, ordering, payload):
    _two_appeals()
    client.force_login(operator)
    # a page, or (a cursor of another ordering's shape) refused: never a 5xx
    readable = len(payload) == len(ORDERINGS[ordering][1])
    status = client.get(reverse("appeals:queue"), {"order": ordering, "after": _cursor(payload)}).status_code
    assert status == (200 if readable else 400)


@pytest.mark.parametrize("after", ["%%%", "ä", "a" * 3, "=" * 8])
def test_undecodable_cursor_is_refused(client, operator, after):
    appeal = AppealFactory()
    client.force_login(operator)
    response = client.get(reverse("appeals:queue"), {"order": "sla", "after": after})
    assert response.status_code == 400 and appeal.reference not in response.content.decode()


def test_a_cursor_of_control_characters_only_is_no_cursor(client, operator):
    appeal = AppealFactory()  # the query string boundary drops them: the first page
    client.force_login(operator)
    response = client.get(reverse("appeals:queue"), {"order": "sla", "after": "\x00"})
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
