"""The private storage failing (disk full, read-only, permission denied) while a resident adds
screenshots: the picture is refused with a message in their language, what they typed and the
pictures already in the draft are kept, nothing half-written stays on disk, and no 500. Reading a
picture the storage cannot give back is a 503 that says so, not a 500; so is a large upload the
temporary folder cannot hold (Django spools it there before any view runs)."""

import errno
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.test import Client
from django.urls import reverse

from appeals.models import AppealEvidence
from communities.models import User
from tests.appeals.test_resident_filing import _identify
from tests.factories import UserFactory
from tests.factories.appeals import AppealFactory, image_bytes, upload

pytestmark = pytest.mark.django_db

STORAGE_FAILED = "Pictures cannot be stored at the moment. Nothing you entered is lost"


def _stored_files(settings) -> list[Path]:
    return sorted(p for p in Path(settings.PRIVATE_MEDIA_ROOT).rglob("*") if p.is_file())


@pytest.fixture
def disk_full_on_the_next_thumbnail(monkeypatch):
    """The disk fills up between a picture and its thumbnail: the worst moment, half of it written."""
    real = FileSystemStorage._save
    state = {"full": False, "saved": 0}

    def save(self, name, content):
        if state["full"] and state["saved"] % 2 == 1:  # the second file of a picture: its thumbnail
            raise OSError(errno.ENOSPC, "No space left on device")
        state["saved"] += 1
        return real(self, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", save)
    return state


def test_a_full_disk_refuses_the_picture_and_keeps_the_draft(client, sms_outbox, resident_with_popup, settings,
                                                             disk_full_on_the_next_thumbnail):
    resident, _popup = resident_with_popup
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    # given a draft with one picture already stored
    first = client.post(reverse("appeals:file-details"), {
        "description": "弹窗是误判，我一直在北京。", "action": "upload", "files": [upload("a.png", image_bytes("PNG", (40, 40)))]})
    assert first.status_code == 200 and AppealEvidence.objects.count() == 1
    kept = _stored_files(settings)
    assert len(kept) == 2
    # when the disk is full as the resident adds a second one
    disk_full_on_the_next_thumbnail["full"] = True
    response = client.post(reverse("appeals:file-details"), {
        "description": "弹窗是误判，我一直在北京。", "action": "upload", "files": [upload("b.png", image_bytes("PNG", (50, 40)))]},
        HTTP_ACCEPT_LANGUAGE="en")
    # then the form says so, keeps the description and the first picture, and nothing half-written stays
    page = response.content.decode()
    assert response.status_code == 400
    assert "Picture 1: " + STORAGE_FAILED in page
    assert "弹窗是误判" in page
    assert AppealEvidence.objects.count() == 1
    assert _stored_files(settings) == kept
    # and once there is room again the same picture goes in
    disk_full_on_the_next_thumbnail["full"] = False
    again = client.post(reverse("appeals:file-details"), {
        "description": "x", "action": "upload", "files": [upload("b.png", image_bytes("PNG", (50, 40)))]})
    assert again.status_code == 200 and AppealEvidence.objects.count() == 2


def test_a_read_only_storage_refuses_a_staff_upload_with_a_400_message(settings, monkeypatch):
    from rest_framework.test import APIClient

    from appeals.services import evidence_store

    api = APIClient()

    operator = UserFactory(role=User.Role.OPERATOR)
    appeal = AppealFactory(assigned_to=operator)

    def read_only(self, name, content):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(FileSystemStorage, "_save", read_only)
    api.force_authenticate(operator)
    response = api.post(reverse("appeals:api-evidence-upload", args=[appeal.reference]),
                        {"file": upload("a.png", image_bytes("PNG", (40, 40)))}, format="multipart",
                        HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and response.json()["detail"].startswith(STORAGE_FAILED)
    assert not AppealEvidence.objects.exists() and not appeal.events.filter(kind="evidence_added").exists()
    monkeypatch.undo()
    assert evidence_store(upload=upload("a.png", image_bytes("PNG", (40, 40))), appeal=appeal).pk


def test_a_picture_the_storage_cannot_read_is_a_503_not_a_500(settings, monkeypatch):
    from appeals.services import evidence_store

    operator = UserFactory(role=User.Role.OPERATOR)
    appeal = AppealFactory(assigned_to=operator)
    evidence = evidence_store(upload=upload("a.png", image_bytes("PNG", (40, 40))), appeal=appeal)

    def denied(self, name, mode="rb"):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(FileSystemStorage, "_open", denied)
    client = Client(raise_request_exception=False)
    client.force_login(operator)
    response = client.get(reverse("appeals:evidence-thumb", args=[evidence.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert "This picture cannot be shown at the moment." in response.content.decode()


def test_a_full_temporary_folder_while_a_large_picture_is_sent_is_a_503_page(settings, monkeypatch, caplog, sms_outbox,
                                                                              resident_with_popup):
    # given a resident filing, an upload large enough to be spooled to the temporary folder, and that folder full
    client = Client(raise_request_exception=False)
    resident, _popup = resident_with_popup
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/tmp/tmpabc.upload.png")

    monkeypatch.setattr("django.core.files.temp.NamedTemporaryFile", full)
    # when a resident sends it
    response = client.post(reverse("appeals:file-details"), {
        "description": "x", "action": "upload", "files": [upload("a.png", image_bytes("PNG", (300, 600)))]},
        HTTP_ACCEPT_LANGUAGE="en")
    # then a page in their language says files cannot be stored for now, not a 500
    assert response.status_code == 503 and int(response["Retry-After"]) > 0
    assert "Files cannot be stored on the server at the moment" in response.content.decode()
    assert "storage refused a file: OSError (errno 28)" in caplog.text and "tmpabc" not in caplog.text
