"""Evidence files only through the checked view, only for those allowed; anonymous never."""

import pytest
from django.urls import reverse

from appeals.services import evidence_store
from communities.models import User
from tests.factories import CommunityFactory, UserFactory
from tests.factories.appeals import AppealFactory, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def evidence(resident_with_popup, operator):
    resident, popup = resident_with_popup
    appeal = AppealFactory(resident=resident, popup=popup, assigned_to=operator)
    return evidence_store(upload=upload(), appeal=appeal)


@pytest.mark.parametrize("view", ["appeals:evidence-file", "appeals:evidence-thumb"])
def test_anonymous_never_gets_evidence(client, evidence, view):
    response = client.get(reverse(view, args=[evidence.pk]))
    assert response.status_code == 403
    assert not response.has_header("Content-Disposition")


def test_assigned_operator_sees_the_picture(client, evidence, operator):
    client.force_login(operator)
    response = client.get(reverse("appeals:evidence-file", args=[evidence.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_other_operator_cannot_open_evidence_by_guessing_the_url(client, evidence, operator_b):
    client.force_login(operator_b)
    for view in ("appeals:evidence-file", "appeals:evidence-thumb"):
        assert client.get(reverse(view, args=[evidence.pk])).status_code == 403
    # a number that does not exist answers the same, so guessing reveals nothing
    assert client.get(reverse("appeals:evidence-file", args=[evidence.pk + 999])).status_code == 403
    page = client.get(reverse("appeals:ticket", args=[evidence.appeal.pk])).content.decode()
    assert reverse("appeals:evidence-file", args=[evidence.pk]) not in page


def test_supervisor_sees_every_appeal_s_evidence(client, evidence, supervisor):
    client.force_login(supervisor)
    assert client.get(reverse("appeals:evidence-thumb", args=[evidence.pk])).status_code == 200


def test_worker_of_the_routed_community_sees_it_and_others_do_not(client, evidence):
    routed = CommunityFactory()
    evidence.appeal.routed_community = routed
    evidence.appeal.save()
    insider = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[routed])
    outsider = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[CommunityFactory()])
    client.force_login(insider)
    assert client.get(reverse("appeals:evidence-file", args=[evidence.pk])).status_code == 200
    assert client.get(reverse("appeals:ticket", args=[evidence.appeal.pk])).status_code == 200
    client.force_login(outsider)
    assert client.get(reverse("appeals:evidence-file", args=[evidence.pk])).status_code == 403
    assert client.get(reverse("appeals:ticket", args=[evidence.appeal.pk])).status_code == 403


@pytest.mark.parametrize("role", [User.Role.VENUE_MANAGER, User.Role.INTEGRATION])
def test_non_staff_roles_get_nothing(client, evidence, role):
    client.force_login(UserFactory(role=role))
    assert client.get(reverse("appeals:evidence-file", args=[evidence.pk])).status_code == 403
    assert client.get(reverse("appeals:queue")).status_code == 403


def test_draft_evidence_is_never_served(client, supervisor):
    draft = evidence_store(upload=upload(), draft_key="abc")
    client.force_login(supervisor)
    assert client.get(reverse("appeals:evidence-file", args=[draft.pk])).status_code == 403


def test_files_live_outside_any_public_url(evidence, settings):
    assert not evidence.file.url.startswith(settings.STATIC_URL)
    assert settings.MEDIA_URL == "/private-media-not-served/"


def test_resident_sees_own_draft_thumbnail_but_another_session_does_not(client, sms_outbox, resident_with_popup):
    from django.test import Client

    from appeals.models import AppealEvidence
    from tests.appeals.test_resident_filing import _identify

    resident, _popup = resident_with_popup
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    client.post(reverse("appeals:file-details"), {"action": "upload", "files": [upload()]})
    draft = AppealEvidence.objects.get()
    url = reverse("appeals:file-draft-thumb", args=[draft.pk])
    assert url in client.get(reverse("appeals:file-details")).content.decode()
    assert client.get(url)["Content-Type"] == "image/jpeg"
    stranger = Client()
    assert stranger.get(url).status_code == 302  # no verified session: back to the start
