"""Supervisors mark, correct and withdraw risk windows through the REST API and the pages."""

import pytest
from rest_framework.test import APIClient

from healthkit.models import PopupCase
from tests.factories import UserFactory
from tests.factories.venues import VenueFactory, VenueScanFactory, cst
from venues.models import RiskWindow, RiskWindowEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(UserFactory(role="supervisor"))
    return client


def test_api_create_correct_withdraw_drive_the_popups(api, django_capture_on_commit_callbacks):
    venue = VenueFactory()
    early = VenueScanFactory(venue=venue, scanned_at=cst(2022, 9, 1, 10, 30))
    late = VenueScanFactory(venue=venue, scanned_at=cst(2022, 9, 1, 13))

    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/v1/venues/risk-windows/create/", {
            "venue": venue.pk, "starts_at": "2022-09-01T10:00:00+08:00",
            "ends_at": "2022-09-01T14:00:00+08:00", "risk_level": "high", "reason": "病例到访"},
            format="json")
    assert created.status_code == 201, created.content
    window_id = created.json()["id"]
    assert PopupCase.objects.filter(dedupe_key=f"venue-risk:{window_id}", state="active").count() == 2

    with django_capture_on_commit_callbacks(execute=True):
        corrected = api.post(f"/api/v1/venues/risk-windows/{window_id}/correct/", {
            "starts_at": "2022-09-01T12:00:00+08:00", "ends_at": "2022-09-01T14:00:00+08:00",
            "risk_level": "medium", "reason": "病例到访", "correction": "时间更正"}, format="json")
    assert corrected.status_code == 200 and corrected.json()["version"] == 2
    assert PopupCase.objects.get(resident_id=early.resident_id).state == "withdrawn"
    assert PopupCase.objects.get(resident_id=late.resident_id).cause["risk_level"] == "medium"

    with django_capture_on_commit_callbacks(execute=True):
        withdrawn = api.post(f"/api/v1/venues/risk-windows/{window_id}/withdraw/", {"reason": "误报"},
                             format="json")
    assert withdrawn.json()["state"] == "withdrawn"
    assert not PopupCase.objects.filter(state="active").exists()
    detail = api.get(f"/api/v1/venues/risk-windows/{window_id}/").json()
    assert detail["exposure_count"] == 2 and detail["exposure_due"] is False
    listed = api.get("/api/v1/venues/risk-windows/?state=withdrawn").json()["results"]
    assert [w["id"] for w in listed] == [window_id]


def test_api_rejects_a_bad_window_with_a_readable_message(api):
    venue = VenueFactory()
    response = api.post("/api/v1/venues/risk-windows/create/", {
        "venue": venue.pk, "starts_at": "2022-09-01T14:00:00+08:00",
        "ends_at": "2022-09-01T10:00:00+08:00", "risk_level": "high", "reason": "x"}, format="json")
    assert response.status_code == 400 and response.json()["detail"]
    assert not RiskWindow.objects.exists()


@pytest.mark.parametrize("role", ["venue_manager", "community_worker", "operator", "integration"])
def test_only_supervisors_manage_windows(role):
    client = APIClient()
    client.force_authenticate(UserFactory(role=role))
    venue = VenueFactory()
    body = {"venue": venue.pk, "starts_at": "2022-09-01T10:00:00+08:00",
            "ends_at": "2022-09-01T14:00:00+08:00", "risk_level": "high", "reason": "x"}
    assert client.post("/api/v1/venues/risk-windows/create/", body, format="json").status_code == 403
    assert client.get("/api/v1/venues/risk-windows/").status_code == 403


def test_api_venue_create_by_supervisor(api):
    from tests.factories import CommunityFactory

    community = CommunityFactory()
    manager = UserFactory(role="venue_manager")
    response = api.post("/api/v1/venues/create/", {"name": "三里屯某酒吧", "kind": "entertainment",
                                                   "community": community.pk, "managers": [manager.pk]},
                        format="json")
    assert response.status_code == 201
    assert response.json()["district"] == community.street.district_id
    assert manager.managed_venues.get().code == response.json()["code"]


def test_pages_mark_correct_and_withdraw(client, django_capture_on_commit_callbacks):
    supervisor = UserFactory(role="supervisor")
    client.force_login(supervisor)
    venue = VenueFactory()
    VenueScanFactory(venue=venue, scanned_at=cst(2022, 9, 1, 11))
    assert client.get("/console/venues/risk-windows/").status_code == 200

    bad = client.post("/console/venues/risk-windows/", {"venue_code": "VNOPE", "starts_at": "2022-09-01T10:00",
                                                        "ends_at": "2022-09-01T14:00", "risk_level": "high",
                                                        "reason": "x"})
    assert bad.status_code == 400

    with django_capture_on_commit_callbacks(execute=True):
        made = client.post("/console/venues/risk-windows/", {
            # typed full-width on a Chinese input method: the same venue
            "venue_code": "".join(chr(ord(ch) + 0xFEE0) for ch in venue.code.lower()), "starts_at": "2022-09-01T10:00", "ends_at": "2022-09-01T14:00",
            "risk_level": "high", "reason": "病例到访"})
    window = RiskWindow.objects.get()
    assert made.status_code == 302 and made["Location"].endswith(f"/risk-windows/{window.pk}/")
    assert window.starts_at == cst(2022, 9, 1, 10)  # the form's local time is Beijing time
    assert PopupCase.objects.filter(state="active").count() == 1
    page = client.get(f"/console/venues/risk-windows/{window.pk}/")
    assert page.status_code == 200 and venue.code in page.content.decode()

    unchanged = client.post(f"/console/venues/risk-windows/{window.pk}/", {
        "action": "correct", "starts_at": "2022-09-01T10:00", "ends_at": "2022-09-01T14:00",
        "risk_level": "high", "reason": "病例到访", "correction": "无"})
    # refused: back to the window's page (a reload sends nothing again), the reason said there
    assert unchanged.status_code == 302 and unchanged["Location"] == f"/console/venues/risk-windows/{window.pk}/"
    assert client.get(unchanged["Location"]).context["messages"]

    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/console/venues/risk-windows/{window.pk}/", {"action": "withdraw", "reason": "误报"})
    assert RiskWindow.objects.get().state == "withdrawn"
    assert PopupCase.objects.get().state == "withdrawn"
    assert list(RiskWindowEvent.objects.values_list("kind", flat=True)) == [
        "created", "exposure", "withdrawn", "exposure"]


def test_window_pages_are_for_supervisors_only(client):
    client.force_login(UserFactory(role="venue_manager"))
    assert client.get("/console/venues/risk-windows/").status_code == 403
