"""The task page: the engine's 'why', what the resident confirmed, and the call log from both
the hotline and the community."""

import pytest
from django.urls import reverse
from django.utils.html import escape

from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent
from appeals.services import appeal_contact_log
from communities.models import User
from healthkit.selectors import popup_explain
from tests.factories import UserFactory
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def test_call_log_merges_hotline_and_community_calls(client):
    appeal = RoutedAppealFactory()
    task = services.clearance_open_for_appeal(appeal=appeal)
    worker = WorkerFactory(communities=[appeal.routed_community])
    operator = UserFactory(role=User.Role.OPERATOR)
    appeal_contact_log(appeal=appeal, actor=operator, direction="inbound", outcome="reached", note="居民来电催办")
    client.force_login(worker)

    response = client.post(reverse("clearance:task-action", args=[task.pk, "call"]),
                           {"direction": "outbound", "outcome": "no_answer", "note": "未接通"})

    assert response.status_code == 302
    assert task.events.filter(kind=ClearanceEvent.Kind.CALL, actor=worker).count() == 1
    page = client.get(reverse("clearance:task", args=[task.pk])).content.decode()
    assert "居民来电催办" in page and "未接通" in page
    assert ">no_answer<" not in page  # shown as a label, not a code


def test_page_shows_the_engines_why_for_the_popup(client):
    appeal = RoutedAppealFactory()
    task = services.clearance_open_for_appeal(appeal=appeal)
    client.force_login(WorkerFactory(communities=[appeal.routed_community]))
    page = client.get(reverse("clearance:task", args=[task.pk])).content.decode()
    lines = popup_explain(appeal.popup)
    assert lines and all(escape(line) in page for line in lines)


def test_bad_call_form_is_refused():
    appeal = RoutedAppealFactory()
    task = services.clearance_open_for_appeal(appeal=appeal)
    worker = WorkerFactory(communities=[appeal.routed_community])
    from healthkit.errors import ApplicationError

    with pytest.raises(ApplicationError):
        services.clearance_call_log(task=task, actor=worker, direction="sideways", outcome="reached")
