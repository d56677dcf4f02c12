"""Every view that serves a stored picture answers the same way: the type recorded when it was
cleaned (not its name), never sniffed, never cached, sandboxed, with a plain inline file name;
HEAD answers without the body."""

import pytest
from django.urls import reverse

from appeals.services import evidence_store
from tests.factories.appeals import AppealFactory, image_bytes, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def evidence(resident_with_popup, operator):
    resident, popup = resident_with_popup
    appeal = AppealFactory(resident=resident, popup=popup, assigned_to=operator)
    # a WebP named like a PNG and sent as text/html: the stored type is what Pillow found
    return evidence_store(upload=upload("李雷.png", image_bytes("WEBP"), "text/html"), appeal=appeal)


def _assert_private_picture(response, content_type: str, name_prefix: str):
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    csp = response["Content-Security-Policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp
    disposition = response["Content-Disposition"]
    assert disposition.startswith(f'inline; filename="{name_prefix}') and "李雷" not in disposition


@pytest.mark.parametrize("view,content_type,prefix", [
    ("appeals:evidence-file", "image/webp", "evidence-"),
    ("appeals:evidence-thumb", "image/jpeg", "evidence-"),
    ("appeals:api-evidence-file", "image/webp", "evidence-"),
])
def test_staff_views_serve_pictures_private_sandboxed_and_typed_by_content(client, evidence, operator, view, content_type, prefix):
    client.force_login(operator)
    response = client.get(reverse(view, args=[evidence.pk]))
    _assert_private_picture(response, content_type, prefix)
    body = b"".join(response.streaming_content)
    assert body[:4] == b"RIFF" if content_type == "image/webp" else body[:2] == b"\xff\xd8"
    head = client.head(reverse(view, args=[evidence.pk]))
    assert head.status_code == 200 and b"".join(head.streaming_content) == b""


def test_resident_draft_thumbnail_is_served_the_same_way(client, sms_outbox, resident_with_popup):
    from tests.appeals.test_resident_filing import _identify

    resident, _popup = resident_with_popup
    _identify(client, sms_outbox, resident, resident.reveal_id_number())
    client.post(reverse("appeals:file-details"), {"description": "x", "action": "upload", "files": [upload("a.png")]})
    from appeals.models import AppealEvidence

    draft = AppealEvidence.objects.get()
    response = client.get(reverse("appeals:file-draft-thumb", args=[draft.pk]))
    _assert_private_picture(response, "image/jpeg", "draft-")
