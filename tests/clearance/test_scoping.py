"""A community worker never sees another community's task, task list, CSV or evidence."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from appeals.services import evidence_store
from communities.models import PersonalDataAccess, User
from tests.factories import CommunityFactory, UserFactory
from tests.factories.clearance import ClearanceTaskFactory, RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


def _png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 160, 90)).save(buffer, format="PNG")
    return SimpleUploadedFile("itinerary.png", buffer.getvalue(), content_type="image/png")


@pytest.fixture
def two_communities():
    mine, theirs = CommunityFactory(), CommunityFactory()
    my_appeal = RoutedAppealFactory(resident__community=mine)
    their_appeal = RoutedAppealFactory(resident__community=theirs)
    my_task = services.clearance_open_for_appeal(appeal=my_appeal)
    their_task = services.clearance_open_for_appeal(appeal=their_appeal)
    worker = WorkerFactory(communities=[mine])
    return worker, my_task, their_task


def test_worklist_lists_only_my_communities(client, two_communities):
    worker, mine, theirs = two_communities
    client.force_login(worker)
    body = client.get(reverse("clearance:worklist"), {"state": "all"}).content.decode()
    assert mine.reference in body and theirs.reference not in body
    # filtering by the other community's id shows nothing rather than their tasks
    body = client.get(reverse("clearance:worklist"), {"community": theirs.community_id}).content.decode()
    assert theirs.reference not in body


def test_other_communitys_task_and_actions_are_forbidden(client, two_communities, sms_outbox):
    worker, _mine, theirs = two_communities
    client.force_login(worker)
    assert client.get(reverse("clearance:task", args=[theirs.pk])).status_code == 403
    for action, data in [("accept", {"reason": "x"}), ("reveal", {"reason": "x"}), ("call", {})]:
        response = client.post(reverse("clearance:task-action", args=[theirs.pk, action]), data)
        assert response.status_code == 403
    theirs.refresh_from_db()
    assert theirs.state == ClearanceTask.State.OPEN
    assert not PersonalDataAccess.objects.filter(resident=theirs.resident).exists()


def test_csv_holds_only_my_communities_masked_and_is_logged(client, two_communities):
    worker, mine, theirs = two_communities
    client.force_login(worker)
    response = client.get(reverse("clearance:worklist-csv"), {"state": "all"})
    text = b"".join(response.streaming_content).decode()
    assert mine.reference in text and theirs.reference not in text
    assert mine.resident.masked in text
    assert mine.resident.name not in text and mine.resident.reveal_id_number() not in text
    assert PersonalDataAccess.objects.filter(actor=worker, action=PersonalDataAccess.Action.EXPORT).count() == 1


def test_evidence_of_another_communitys_appeal_is_forbidden(client, two_communities):
    worker, mine, theirs = two_communities
    my_evidence = evidence_store(upload=_png(), appeal=mine.appeal)
    their_evidence = evidence_store(upload=_png(), appeal=theirs.appeal)
    client.force_login(worker)
    page = client.get(reverse("clearance:task", args=[mine.pk])).content.decode()
    assert reverse("appeals:evidence-thumb", args=[my_evidence.pk]) in page
    assert client.get(reverse("appeals:evidence-file", args=[my_evidence.pk])).status_code == 200
    assert client.get(reverse("appeals:evidence-file", args=[their_evidence.pk])).status_code == 403


def test_operators_and_venue_managers_have_no_worklist(client, two_communities):
    for role in (User.Role.OPERATOR, User.Role.VENUE_MANAGER):
        client.force_login(UserFactory(role=role))
        assert client.get(reverse("clearance:worklist")).status_code == 403
        assert client.get(reverse("clearance:worklist-csv")).status_code == 403


def test_anonymous_is_sent_to_login(client, two_communities):
    response = client.get(reverse("clearance:worklist"))
    assert response.status_code == 302 and "login" in response["Location"]


def test_supervisor_sees_every_community(client, two_communities):
    _worker, mine, theirs = two_communities
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    body = client.get(reverse("clearance:worklist")).content.decode()
    assert mine.reference in body and theirs.reference in body


def test_reveal_is_scoped_audited_and_shows_clear_data_once(client, two_communities):
    worker, mine, _theirs = two_communities
    client.force_login(worker)
    response = client.post(reverse("clearance:task-action", args=[mine.pk, "reveal"]), {"reason": "电话核实身份"})
    assert response.status_code == 200
    assert mine.resident.reveal_id_number() in response.content.decode()
    log = PersonalDataAccess.objects.get(actor=worker, resident=mine.resident, action=PersonalDataAccess.Action.REVEAL_ID)
    assert log.reason == "电话核实身份"
    # the ordinary page stays masked
    assert mine.resident.reveal_id_number() not in client.get(reverse("clearance:task", args=[mine.pk])).content.decode()


def test_task_created_without_appeal_is_scoped_by_its_community(client):
    task = ClearanceTaskFactory()
    outsider = WorkerFactory(communities=[CommunityFactory()])
    client.force_login(outsider)
    assert client.get(reverse("clearance:task", args=[task.pk])).status_code == 403


def test_reveals_are_rate_limited_per_user(client, two_communities, settings):
    settings.CLEARANCE_LOOKUP_RATE_LIMIT = "1/3600"
    worker, mine, _theirs = two_communities
    client.force_login(worker)
    url = reverse("clearance:task-action", args=[mine.pk, "reveal"])
    assert client.post(url, {"reason": "电话核实"}).status_code == 200
    refused = client.post(url, {"reason": "再看一次"})
    assert refused.status_code == 429 and "再看一次" in refused.content.decode()  # the reason typed is kept
    assert PersonalDataAccess.objects.filter(actor=worker, action=PersonalDataAccess.Action.REVEAL_ID).count() == 1
