"""List filters a page cannot read say so, next to the field, in the reader's language: the
operator's queue said "0 appeals" and the worker's worklist listed every task, with no word of
the mistake (the filter forms rendered their inputs without their errors)."""

import re

import pytest
from django.urls import reverse

from communities.models import PersonalDataAccess, User
from tests.factories.appeals import AppealFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def test_a_queue_filter_that_cannot_be_read_is_shown_next_to_its_field(client):
    # given an operator and an open appeal
    client.force_login(User.objects.create_user("op", password="pass-1234-word", role=User.Role.OPERATOR))
    AppealFactory()
    # when the "filed from" date is not a date
    html = client.get(reverse("appeals:queue"), {"filed_after": "yesterday"},
                      HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    # then its error sits by the field, which names it, and the page does not claim there are no appeals
    assert '<ul class="errorlist" id="id_filed_after_error"><li>输入一个有效的日期。</li></ul>' in html
    assert 'aria-describedby="id_filed_after_error"' in html and 'aria-invalid="true"' in html
    assert 'id="filter-invalid"' in html and "筛选条件无效。" in html
    assert "暂无申诉" not in html and "0件申诉" not in html


def test_a_worklist_filter_that_cannot_be_read_lists_nothing_and_says_why(client):
    # given a worker with one task
    task = ClearanceTaskFactory()
    client.force_login(WorkerFactory(communities=[task.community]))
    # when the priority is not one of the choices
    response = client.get(reverse("clearance:worklist"), {"priority": "abc"}, HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    # then the field says so and the task is not listed as if nothing had been filtered
    assert 'id="id_priority_error"' in html and "Select a valid choice." in html
    assert 'id="filter-invalid"' in html and task.reference not in html
    assert response.context["page"].paginator.count == 0
    # nor exported: the download leads back to the worklist with that filter, nothing recorded
    export = client.post(reverse("oversight:export-tasks"),
                         {"reason": "weekly check", "format": "csv", "query": "priority=abc"})
    assert export.status_code == 302 and export["Location"] == reverse("clearance:worklist") + "?priority=abc"
    assert not PersonalDataAccess.objects.filter(action=PersonalDataAccess.Action.EXPORT).exists()


def test_the_worklist_finds_a_task_by_its_appeal_reference_and_exports_what_it_shows(client):
    # given a worker with two tasks, one opened for a routed appeal
    routed = RoutedAppealFactory()
    task = ClearanceTaskFactory(resident=routed.resident, popup=routed.popup, community=routed.routed_community,
                                appeal=routed)
    other = ClearanceTaskFactory(community=routed.routed_community)
    client.force_login(WorkerFactory(communities=[routed.routed_community]))
    # when the worker types the appeal reference the resident reads out on the phone
    response = client.get(reverse("clearance:worklist"), {"reference": routed.reference})
    # then that task is listed, alone
    assert [t.pk for t in response.context["page"]] == [task.pk]
    # and the worklist's export form carries the filter, so the download is the list shown
    assert f'name="query" value="reference={routed.reference}"' in response.content.decode()
    export = client.post(reverse("oversight:export-tasks"),
                         {"reason": "weekly check", "format": "csv", "query": f"reference={routed.reference}"})
    text = b"".join(export.streaming_content).decode("utf-8-sig")
    assert task.reference in text and other.reference not in text


@pytest.mark.parametrize(("language", "words", "never"), [("en", ["Any", "Yes", "No"], "Unknown"),
                                                           ("zh-hans", ["不限", "是", "否"], "未知")])
def test_a_yes_no_filter_offers_any_yes_no_not_unknown(client, language, words, never):
    # given an operator on the queue
    client.force_login(User.objects.create_user("op", password="pass-1234-word", role=User.Role.OPERATOR))
    html = client.get(reverse("appeals:queue"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    # then each yes/no filter (escalated, appealed again, stranded) reads "any", "yes", "no"
    for name in ("escalated", "repeated", "stranded"):
        select = html[html.index(f'<select name="{name}"'):]
        select = select[:select.index("</select>")]
        options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)<', select)
        assert options == [("", words[0]), ("true", words[1]), ("false", words[2])]
        assert never not in select
    # and a value that is none of them is refused, not read as "any"
    response = client.get(reverse("appeals:queue"), {"escalated": "unknown"}, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 400 and 'id="id_escalated_error"' in response.content.decode()
