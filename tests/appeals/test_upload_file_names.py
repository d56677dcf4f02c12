"""Whatever a browser sends as an upload's file name (a 300-character "extension", a path, NUL,
a right-to-left override, 1,000 characters), the request is answered, never a 500: Django names
its temporary file after the upload's extension, and the system refuses a name over 255 bytes."""

import io

import pytest
from django.urls import reverse
from PIL import Image

from appeals.models import AppealEvidence
from appeals.services import appeal_request_evidence
from healthkit.models import SmsMessage
from tests.factories.appeals import AppealFactory, upload
from tests.sms_text import phone_text

pytestmark = pytest.mark.django_db


def _big_png() -> bytes:
    """A real screenshot-sized PNG over FILE_UPLOAD_MAX_MEMORY_SIZE, so Django spools it to disk."""
    out = io.BytesIO()
    Image.effect_noise((1100, 1100), 90).convert("RGB").save(out, "PNG", compress_level=0)
    data = out.getvalue()
    assert len(data) > 2 * 1024 * 1024
    return data


@pytest.mark.parametrize("name", [
    "截图." + "图" * 100,                # an "extension" of 300 bytes
    "a." + "x" * 300,
    "../../etc/passwd.png",
    "shot\x00.html.png",
    "\u202egnp.exe",                    # right-to-left override
    "弹" * 1000 + ".png",
])
def test_any_file_name_is_answered_and_never_stored(client, operator, settings, name):
    settings.OFFICIAL_SITE_URL = "https://12345.example.gov.cn"
    appeal = AppealFactory()
    appeal_request_evidence(appeal=appeal, actor=operator)
    token = phone_text(SmsMessage.objects.get()).split("/appeals/evidence-link/")[1].split("/")[0]
    response = client.post(reverse("appeals:evidence-link", args=[token]),
                           {"note": "", "files": [upload(name, _big_png(), "image/png")]})
    assert response.status_code == 200
    evidence = AppealEvidence.objects.get(appeal=appeal)
    stored = evidence.file.name.rsplit("/", 1)[-1]
    assert stored.endswith(".png") and "弹" not in stored and "passwd" not in stored and len(evidence.file.name) < 100
