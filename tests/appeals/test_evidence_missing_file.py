"""A screenshot row whose file has gone (restore from backup, disk trouble) answers 404 on every
serving path, never a 500 with a traceback; the headers stay private."""

import pytest
from django.urls import reverse

from appeals.services import evidence_store
from tests.factories.appeals import AppealFactory, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def evidence(resident_with_popup):
    resident, popup = resident_with_popup
    return evidence_store(upload=upload(), appeal=AppealFactory(resident=resident, popup=popup))


def test_api_and_console_serve_a_present_file_privately(client, evidence, supervisor):
    client.force_login(supervisor)
    for url in (reverse("appeals:api-evidence-file", args=[evidence.pk]),
                reverse("appeals:evidence-file", args=[evidence.pk])):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Cache-Control"] == "private, no-store"
        assert response["X-Content-Type-Options"] == "nosniff"


def test_missing_file_answers_404_on_the_api_and_the_console(client, evidence, supervisor):
    evidence.file.storage.delete(evidence.file.name)
    evidence.thumbnail.storage.delete(evidence.thumbnail.name)
    client.force_login(supervisor)

    for url in (reverse("appeals:api-evidence-file", args=[evidence.pk]),
                reverse("appeals:evidence-file", args=[evidence.pk]),
                reverse("appeals:evidence-thumb", args=[evidence.pk])):
        assert client.get(url).status_code == 404, url
