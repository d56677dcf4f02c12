"""The clearance REST API: scoped like the console, masked, decisions through the services."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from healthkit.models import PopupCase, TestRequirement
from tests.factories import CommunityFactory, PopupCaseFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    mine, theirs = CommunityFactory(), CommunityFactory()
    my_task = services.clearance_open_for_appeal(appeal=RoutedAppealFactory(resident__community=mine,
                                                                            popup__popup_type=1))
    their_task = services.clearance_open_for_appeal(appeal=RoutedAppealFactory(resident__community=theirs))
    api = APIClient()
    api.force_authenticate(WorkerFactory(communities=[mine]))
    return api, my_task, their_task


def test_list_is_scoped_and_masked(setup):
    api, mine, theirs = setup
    rows = api.get(reverse("clearance:api-list")).json()["results"]
    assert [r["reference"] for r in rows] == [mine.reference]
    assert rows[0]["resident"] == mine.resident.masked
    assert mine.resident.name not in str(rows)


def test_detail_of_another_community_is_forbidden(setup):
    api, mine, theirs = setup
    assert api.get(reverse("clearance:api-detail", args=[theirs.pk])).status_code == 403
    detail = api.get(reverse("clearance:api-detail", args=[mine.pk])).json()
    assert detail["popup_explanation"] and detail["history"][0]["kind"] == "opened"


def test_accept_through_the_api_lifts_the_popup(setup):
    api, mine, theirs = setup
    response = api.post(reverse("clearance:api-decision", args=[mine.pk]),
                        {"decision": "accept", "reason": "核实无风险"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "lifted"
    mine.popup.refresh_from_db()
    assert mine.popup.state == PopupCase.State.LIFTED
    assert api.post(reverse("clearance:api-decision", args=[theirs.pk]),
                    {"decision": "accept", "reason": "x"}, format="json").status_code == 403


def test_service_errors_are_a_400_with_a_message(setup):
    api, mine, _theirs = setup
    response = api.post(reverse("clearance:api-decision", args=[mine.pk]), {"decision": "reject"}, format="json")
    assert response.status_code == 400 and response.json()["detail"]
    mine.refresh_from_db()
    assert mine.state == ClearanceTask.State.OPEN


def test_investigation_through_the_api(setup):
    api, _mine, _theirs = setup
    popup = PopupCaseFactory(popup_type=3)
    task = ClearanceTaskFactory(resident=popup.resident, popup=popup)
    api.force_authenticate(WorkerFactory(communities=[task.community]))
    response = api.post(reverse("clearance:api-investigation", args=[task.pk]),
                        {"outcome": "listed_area", "reason": "途经涉疫地区"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "measures"
    assert TestRequirement.objects.filter(resident=task.resident).count() == 4


def test_schema_includes_the_clearance_api(client):
    from communities.models import User
    from tests.factories import UserFactory

    client.force_login(UserFactory(role=User.Role.ADMINISTRATOR))
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/clearance/tasks/{id}/decision/" in schema
