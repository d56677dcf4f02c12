"""Every page and API answer that shows one person's data writes an access-audit row naming the
viewer, the resident and where: ticket and task pages, appeal and task API details, each
evidence picture and thumbnail (console and API), and the admin's pages of a person's records."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from appeals.services import evidence_store
from communities.models import PersonalDataAccess, User
from tests.factories import PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory, upload
from tests.factories.clearance import ClearanceTaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor():
    return UserFactory(role=User.Role.SUPERVISOR)


@pytest.fixture
def appeal():
    resident = ResidentFactory()
    return AppealFactory(resident=resident, popup=PopupCaseFactory(resident=resident))


@pytest.fixture
def evidence(appeal):
    return evidence_store(upload=upload(), appeal=appeal)


def _audited(user, resident) -> list[str]:
    return list(PersonalDataAccess.objects.filter(actor=user, resident=resident,
                                                  action=PersonalDataAccess.Action.VIEW)
                .values_list("context", flat=True))


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_ticket_page_is_audited(client, supervisor, appeal):
    client.force_login(supervisor)
    assert client.get(reverse("appeals:ticket", args=[appeal.pk])).status_code == 200
    assert _audited(supervisor, appeal.resident) == [f"appeal:{appeal.pk}/console"]


def test_appeal_api_detail_is_audited(supervisor, appeal):
    response = _api(supervisor).get(reverse("appeals:api-detail", args=[appeal.reference]))
    assert response.status_code == 200 and response.json()["reference"] == appeal.reference
    assert _audited(supervisor, appeal.resident) == [f"appeal:{appeal.pk}/api:get:api-detail"]


@pytest.mark.parametrize(("view", "where"), [("appeals:evidence-file", "file"),
                                             ("appeals:evidence-thumb", "thumbnail")])
def test_each_evidence_picture_opened_in_the_console_is_audited(client, supervisor, evidence, view, where):
    client.force_login(supervisor)
    response = client.get(reverse(view, args=[evidence.pk]))
    assert b"".join(response.streaming_content)
    assert _audited(supervisor, evidence.appeal.resident) == [f"evidence:{evidence.pk}/{where}"]


def test_evidence_picture_from_the_api_is_audited(supervisor, evidence):
    response = _api(supervisor).get(reverse("appeals:api-evidence-file", args=[evidence.pk]))
    assert b"".join(response.streaming_content)
    assert _audited(supervisor, evidence.appeal.resident) == [f"evidence:{evidence.pk}/api"]


def test_refused_evidence_writes_no_audit(client, evidence):
    outsider = UserFactory(role=User.Role.OPERATOR)  # not assigned: may not open it
    client.force_login(outsider)
    assert client.get(reverse("appeals:evidence-file", args=[evidence.pk])).status_code == 403
    assert not PersonalDataAccess.objects.filter(actor=outsider).exists()


def test_clearance_task_page_and_api_detail_are_audited(client, supervisor):
    task = ClearanceTaskFactory()
    client.force_login(supervisor)
    assert client.get(reverse("clearance:task", args=[task.pk])).status_code == 200
    response = _api(supervisor).get(reverse("clearance:api-detail", args=[task.pk]))
    assert response.status_code == 200
    assert sorted(_audited(supervisor, task.resident)) == [f"task:{task.pk}/api", f"task:{task.pk}/console"]


@pytest.mark.parametrize("page", ["change", "history"])
def test_admin_pages_of_a_resident_are_audited(client, page):
    admin = UserFactory(role=User.Role.ADMINISTRATOR, is_staff=True, is_superuser=True)
    resident = ResidentFactory()
    client.force_login(admin)
    assert client.get(reverse(f"admin:communities_resident_{page}", args=[resident.pk])).status_code == 200
    assert _audited(admin, resident) == [f"admin:communities.resident:{resident.pk}"]


def test_admin_pages_of_an_appeal_and_a_task_are_audited(client, appeal):
    admin = UserFactory(role=User.Role.ADMINISTRATOR, is_staff=True, is_superuser=True)
    task = ClearanceTaskFactory()
    client.force_login(admin)
    assert client.get(reverse("admin:appeals_appeal_change", args=[appeal.pk])).status_code == 200
    assert client.get(reverse("admin:clearance_clearancetask_change", args=[task.pk])).status_code == 200
    assert _audited(admin, appeal.resident) == [f"admin:appeals.appeal:{appeal.pk}"]
    assert _audited(admin, task.resident) == [f"admin:clearance.clearancetask:{task.pk}"]


def test_the_audit_records_the_client_address(client, supervisor, appeal):
    client.force_login(supervisor)
    client.get(reverse("appeals:ticket", args=[appeal.pk]), REMOTE_ADDR="10.1.2.3")
    assert PersonalDataAccess.objects.get(actor=supervisor).ip == "10.1.2.3"
