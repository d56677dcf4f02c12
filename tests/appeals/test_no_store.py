"""Pages that show personal data tell browsers and proxies to keep no copy (`no-store`): the
ticket and its reveal, the clearance task, the public status and filing pages, the resident's
links, the admin and the API. One middleware decides; static files stay cacheable."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from communities.models import User
from tests.factories import UserFactory
from tests.factories.appeals import AppealFactory
from tests.factories.clearance import ClearanceTaskFactory

pytestmark = pytest.mark.django_db


def no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


@pytest.fixture
def appeal(resident_with_popup):
    resident, popup = resident_with_popup
    return AppealFactory(resident=resident, popup=popup)


def test_console_ticket_reveal_and_task_pages_are_not_stored(client, appeal, operator):
    client.force_login(operator)
    ticket = client.get(reverse("appeals:ticket", args=[appeal.pk]))
    assert ticket.status_code == 200 and appeal.reference in ticket.content.decode() and no_store(ticket)
    reveal = client.post(reverse("appeals:ticket", args=[appeal.pk]), {"reason": "to call the resident back"})
    assert reveal.status_code == 200 and no_store(reveal)
    assert no_store(client.get(reverse("console-home")))
    task = ClearanceTaskFactory(resident=appeal.resident, popup=appeal.popup)
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[task.community])
    client.force_login(worker)
    page = client.get(reverse("clearance:task", args=[task.pk]))
    assert page.status_code == 200 and task.reference in page.content.decode() and no_store(page)


def test_public_status_filing_and_link_pages_are_not_stored(client, appeal):
    for url in (reverse("appeals:status"), reverse("appeals:file-identify"), "/clearance/r/not-a-token/",
                "/appeals/evidence-link/not-a-token/"):
        response = client.get(url)
        assert no_store(response), url
    answer = client.post(reverse("appeals:status"), {"reference": appeal.reference})
    assert no_store(answer)


def test_admin_and_api_are_not_stored_and_static_files_stay_cacheable(client, appeal):
    admin = UserFactory(role=User.Role.ADMINISTRATOR, is_staff=True, is_superuser=True)
    client.force_login(admin)
    assert no_store(client.get(reverse("admin:appeals_appeal_changelist")))
    client.logout()
    integration = UserFactory(role=User.Role.INTEGRATION)
    token = Token.objects.create(user=integration)
    api = client.get(reverse("appeals:api-detail", args=[appeal.reference]), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert no_store(api)
    assert not no_store(client.get("/static/not-there.css"))
