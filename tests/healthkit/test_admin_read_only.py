"""Popups and test results are read-only in the admin: changing them there would bypass the
event log, the outbox and the re-evaluation that the services and the ingest API guarantee."""

import pytest
from django.test import Client

from healthkit.models import PopupCase, TestResult
from tests.factories import PopupCaseFactory, TestResultFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client():
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(UserFactory(role="administrator", is_staff=True, is_superuser=True))
    return client


def test_popup_case_can_be_viewed_not_changed_or_deleted(admin_client):
    case = PopupCaseFactory(popup_type=4)
    url = f"/admin/healthkit/popupcase/{case.pk}/change/"
    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, {"popup_type": 3, "source": "upstream"}).status_code == 403
    assert admin_client.post(f"/admin/healthkit/popupcase/{case.pk}/delete/", {"post": "yes"}).status_code == 403
    case.refresh_from_db()
    assert case.popup_type == 4 and PopupCase.objects.filter(pk=case.pk).exists()


def test_test_result_can_be_viewed_not_changed_added_or_deleted(admin_client):
    result = TestResultFactory(result="positive")
    url = f"/admin/healthkit/testresult/{result.pk}/change/"
    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, {"result": "negative"}).status_code == 403
    assert admin_client.get("/admin/healthkit/testresult/add/").status_code == 403
    assert admin_client.post(f"/admin/healthkit/testresult/{result.pk}/delete/", {"post": "yes"}).status_code == 403
    result.refresh_from_db()
    assert result.result == "positive"
    assert TestResult.objects.count() == 1
