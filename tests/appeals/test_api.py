"""REST API for tickets and evidence: role scoping, actions, schema."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from appeals.models import Appeal, AppealEvent
from appeals.services import evidence_store
from communities.models import User
from tests.factories import CommunityFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return APIClient(HTTP_ACCEPT_LANGUAGE="en")


def test_list_is_scoped_and_masked(api, operator):
    appeal = AppealFactory()
    api.force_authenticate(operator)
    data = api.get(reverse("appeals:api-list")).json()
    assert [r["reference"] for r in data["results"]] == [appeal.reference]
    assert data["results"][0]["resident"] == appeal.resident.masked
    assert "next" in data and "count" not in data  # cursor pagination: no COUNT(*)


def test_list_filters(api, operator):
    AppealFactory(category="other")
    stranded = AppealFactory(category="stranded")
    api.force_authenticate(operator)
    data = api.get(reverse("appeals:api-list"), {"category": "stranded"}).json()
    assert [r["reference"] for r in data["results"]] == [stranded.reference]


def test_worker_sees_only_their_community_and_venue_manager_nothing(api):
    community = CommunityFactory()
    visible = AppealFactory(routed_community=community)
    AppealFactory()
    api.force_authenticate(UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[community]))
    assert [r["reference"] for r in api.get(reverse("appeals:api-list")).json()["results"]] == [visible.reference]
    api.force_authenticate(UserFactory(role=User.Role.VENUE_MANAGER))
    assert api.get(reverse("appeals:api-list")).status_code == 403


def test_anonymous_gets_401(api):
    assert api.get(reverse("appeals:api-list")).status_code in (401, 403)


def test_detail_has_history_and_explanation(api, operator, resident_with_popup):
    resident, popup = resident_with_popup
    appeal = AppealFactory(resident=resident, popup=popup)
    AppealEvent.objects.create(appeal=appeal, kind="filed")
    api.force_authenticate(operator)
    data = api.get(reverse("appeals:api-detail", args=[appeal.reference])).json()
    assert data["history"][0]["kind"] == "filed"
    assert data["popup_explanation"] and resident.reveal_id_number() not in str(data)


def test_create_by_phone_and_actions(api, operator, community, monkeypatch):
    from appeals.clearance import tasks

    monkeypatch.setattr(tasks.clearance_open_for_appeal, "delay", lambda pk: None)
    api.force_authenticate(operator)
    caller = ResidentFactory(name="周八", community=community, phone="13300001111")
    response = api.post(reverse("appeals:api-create"), {
        "name": "周八", "id_number": caller.reveal_id_number(), "phone": "13300001111", "category": "emergency_business",
        "community_code": community.code, "description": "contract signing"}, format="json")
    assert response.status_code == 201
    ref = response.json()["reference"]
    assert api.post(reverse("appeals:api-assign", args=[ref]), {}, format="json").json()["assigned_to"] == operator.username
    contact = api.post(reverse("appeals:api-contacts", args=[ref]),
                       {"direction": "outbound", "outcome": "reached", "note": "ok"}, format="json")
    assert contact.status_code == 201
    routed = api.post(reverse("appeals:api-route", args=[ref]), {"community_code": community.code}, format="json")
    assert routed.json()["status"] == "routed"
    closed = api.post(reverse("appeals:api-close", args=[ref]), {"outcome": "lifted", "reason": "done"}, format="json")
    assert closed.json()["status"] == "closed"
    kinds = list(Appeal.objects.get(reference=ref).events.values_list("kind", flat=True))
    assert kinds[0] == "filed" and "routed" in kinds and kinds[-1] == "closed"


def test_application_error_is_a_400_with_message(api, operator):
    appeal = AppealFactory(status=Appeal.Status.CLOSED)
    api.force_authenticate(operator)
    response = api.post(reverse("appeals:api-assign", args=[appeal.reference]), {}, format="json")
    assert response.status_code == 400 and response.json()["detail"] == "This appeal is closed."


def test_evidence_list_and_file_follow_the_same_rule(api, operator, operator_b):
    appeal = AppealFactory(assigned_to=operator)
    evidence = evidence_store(upload=upload(), appeal=appeal)
    api.force_authenticate(operator)
    items = api.get(reverse("appeals:api-evidence", args=[appeal.reference])).json()
    assert items[0]["id"] == evidence.pk
    assert api.get(items[0]["file_url"]).status_code == 200
    api.force_authenticate(operator_b)
    assert api.get(reverse("appeals:api-evidence", args=[appeal.reference])).status_code == 403
    assert api.get(reverse("appeals:api-evidence-file", args=[evidence.pk])).status_code == 403


def test_evidence_upload_via_api_is_validated(api, operator):
    appeal = AppealFactory(assigned_to=operator)
    api.force_authenticate(operator)
    ok = api.post(reverse("appeals:api-evidence-upload", args=[appeal.reference]), {"file": upload()}, format="multipart")
    assert ok.status_code == 201
    bad = api.post(reverse("appeals:api-evidence-upload", args=[appeal.reference]),
                   {"file": upload("x.png", b"nope")}, format="multipart")
    assert bad.status_code == 400 and "not a PNG" in bad.json()["detail"]
    assert appeal.events.filter(kind="evidence_added").count() == 1


def test_schema_describes_the_appeals_api(api, operator):
    api.force_authenticate(operator)
    schema = api.get(reverse("api-schema"), {"format": "json"}).json()
    paths = schema["paths"]
    assert "/api/v1/appeals/" in paths and "/api/v1/appeals/{reference}/evidence/" in paths
    assert "/api/v1/appeals/create/" in paths


def test_search_by_exact_id_is_a_post_and_is_audited(api, operator):
    from communities.models import PersonalDataAccess

    appeal = AppealFactory()
    AppealFactory()
    api.force_authenticate(operator)
    data = api.post(reverse("appeals:api-search"), {"id_number": appeal.resident.reveal_id_number()}, format="json").json()
    assert [r["reference"] for r in data] == [appeal.reference]
    assert PersonalDataAccess.objects.filter(actor=operator, action="lookup", resident=appeal.resident).count() == 1
    assert api.post(reverse("appeals:api-search"), {}, format="json").status_code == 400
