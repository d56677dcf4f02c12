"""The real queue page, as an operator past the second factor opens it: six queries or fewer on
every queue the console offers, in every ordering, deep in the queue as on page one; its rows are
the selector's masked and labelled values, escaped; its filter drop-downs keep Django's markup."""

import datetime as dt

import pytest
from django import forms
from django.urls import reverse
from django.utils import timezone

from appeals.filters import (
    AppealFilter,
    PlainDateInput,
    PlainNullBooleanSelect,
    PlainSelect,
    PlainTextInput,
)
from appeals.models import Appeal
from appeals.selectors import ORDERINGS, _encode, seek_page
from appeals.views_console import QueueView
from healthkit.filtering import AnyYesNoSelect
from tests.factories import CommunityFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def _fill(operator) -> None:
    """More than one (small) page in every queue."""
    now = timezone.now()
    for i in range(6):
        AppealFactory(priority=Appeal.Priority.EMERGENCY, assigned_to=operator,
                      created_at=now - dt.timedelta(minutes=i), sla_due_at=now + dt.timedelta(minutes=20 + i))
        AppealFactory(status=Appeal.Status.WAITING_RESIDENT, created_at=now - dt.timedelta(hours=3, minutes=i),
                      sla_due_at=now - dt.timedelta(hours=1, minutes=i), sla_breached_at=now - dt.timedelta(hours=1))
        AppealFactory(status=Appeal.Status.ROUTED, routed_community=CommunityFactory(),
                      created_at=now - dt.timedelta(hours=5, minutes=i))
        AppealFactory(status=Appeal.Status.CLOSED, closed_at=now, created_at=now - dt.timedelta(days=1, minutes=i))


@pytest.mark.parametrize("queue", [key for key, _label in AppealFilter.QUEUES])
def test_every_queue_and_ordering_takes_six_queries_or_fewer_deep_in(
        client, enrolled_operator, queue, monkeypatch, django_assert_max_num_queries):
    # given pages of 2 rows and more than one page in the queue
    _fill(enrolled_operator)
    monkeypatch.setattr(QueueView, "page_size", 2)
    url = reverse("appeals:queue")
    for ordering in ORDERINGS:
        first = client.get(url, {"queue": queue, "order": ordering})
        after = first.context["page"].next_cursor
        assert after, (queue, ordering)
        # when the operator follows the cursor twice (the third page)
        second = client.get(url, {"queue": queue, "order": ordering, "after": after})
        with django_assert_max_num_queries(6):
            response = client.get(url, {"queue": queue, "order": ordering,
                                        "after": second.context["page"].next_cursor})
        # then the page is the verified operator's, with rows, within the query budget
        assert response.status_code == 200 and response.wsgi_request.user.is_verified()
        shown = {row.pk for row in response.context["page"].rows}
        assert shown and not shown & {row.pk for row in first.context["page"].rows + second.context["page"].rows}


def test_rows_show_masked_labelled_and_escaped_values(client, enrolled_operator):
    # given an appeal routed to a community whose name holds markup, folded twice, breached
    community = CommunityFactory(name="<b>劲松</b>社区")
    appeal = AppealFactory(status=Appeal.Status.ROUTED, routed_community=community, priority=Appeal.Priority.EMERGENCY,
                           repeat_count=2, sla_breached_at=timezone.now())
    # when the operator opens the queue in English
    html = client.get(reverse("appeals:queue"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    # then the row links the ticket and shows the labels, the fold count and the breach
    link = html.index(f'href="{reverse("appeals:ticket", args=[appeal.pk])}?from="')  # the queue's place goes with the link
    start = html.rindex("<tr", 0, link)
    row = html[start:html.index("</tr>", link)]
    assert '<tr class="p1 breached">' in row and "×3" in row
    assert '<span class="badge red">Emergency</span>' in row and "With the community" in row
    assert "Popup correction" in row and '<span class="badge red">SLA breached</span>' in row
    # the community name is escaped, never markup
    assert "&lt;b&gt;劲松&lt;/b&gt;社区" in row and "<b>劲松</b>" not in html
    # the person only masked: the stored masked form, never the clear name or ID number
    assert appeal.resident.masked in row
    # and the breach badge is in the reader's language (it stayed English on the Chinese queue)
    html = client.get(reverse("appeals:queue"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert '<span class="badge red">已超时</span>' in html and ">breached<" not in html
    assert appeal.resident.name not in html and appeal.resident.reveal_id_number() not in html


@pytest.mark.parametrize("value", ["a", "1", 1, None, "x", "missing"])
def test_plain_select_writes_djangos_markup(value):
    choices = [("", "---------"), ("a", 'A & "B" <c>'), (1, "One"), ("group", [("x", "X"), ("y", "Y")])]
    attrs = {"id": "id_q", "data-x": "1"}
    assert PlainSelect(choices=choices, attrs=attrs).render("q", value) == _compact(
        forms.Select(choices=choices, attrs=attrs).render("q", value))


@pytest.mark.parametrize("value", [None, True, False, "true", "false", "unknown"])
def test_plain_null_boolean_select_writes_djangos_markup(value):
    assert PlainNullBooleanSelect().render("e", value) == _compact(AnyYesNoSelect().render("e", value))


@pytest.mark.parametrize("value", [None, "", "a & \"b\" <c>", 7])
def test_plain_text_input_writes_djangos_markup(value):
    attrs = {"id": "id_r", "maxlength": 20, "required": True, "disabled": False}
    assert PlainTextInput(attrs=attrs).render("r", value) == forms.TextInput(attrs=attrs).render("r", value)


@pytest.mark.parametrize("value", [None, "", "2022-11-20", dt.date(2022, 11, 20), "not a date"])
def test_plain_date_input_writes_djangos_markup(value):
    attrs = {"id": "id_d"}
    assert PlainDateInput(attrs=attrs).render("d", value) == forms.DateInput(attrs=attrs).render("d", value)


def _compact(html: str) -> str:
    """Django's template indents each option on its own line; the markup is otherwise the same."""
    return "\n".join(line.strip() for line in html.splitlines() if line.strip())


def test_count_rides_with_the_rows_and_holds_past_the_end(django_assert_num_queries):
    # given three open appeals
    appeals = [AppealFactory(created_at=timezone.now() - dt.timedelta(minutes=i)) for i in range(3)]
    qs = Appeal.objects.filter(status__in=Appeal.OPEN_STATUSES)
    # when a page is read, the count comes with its rows in one query
    with django_assert_num_queries(1):
        page = seek_page(qs, ordering="oldest", size=2)
    assert len(page.rows) == 2 and page.count == 3 and not page.count_capped
    # and a cursor past the last row finds no rows but still the queue's count
    last = max(appeals, key=lambda a: (a.created_at, a.pk))
    beyond = seek_page(qs, ordering="oldest", cursor=_encode([last.created_at, last.pk]), size=2)
    assert beyond.rows == [] and beyond.count == 3 and beyond.next_cursor is None
