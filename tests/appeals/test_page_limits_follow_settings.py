"""The resident's pages state the limits the code enforces (code validity, screenshot count,
official site), read from the settings, so a configured change never leaves a page promising
something else."""

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("language", "minutes", "screenshots"), [
    ("en", "It is valid for 15 minutes.", "add up to 6 screenshots"),
    ("zh-hans", "15分钟内有效", "最多6张截图"),
])
def test_pages_state_the_configured_limits(settings, resident_with_popup, language, minutes, screenshots):
    settings.APPEALS_CODE_TTL_SECONDS = 15 * 60
    settings.APPEALS_EVIDENCE_MAX_FILES = 6
    settings.OFFICIAL_SITE_URL = "https://jkb.example.gov.cn"
    resident, _popup = resident_with_popup
    client = Client(HTTP_ACCEPT_LANGUAGE=language)

    start = client.get(reverse("appeals:start")).content.decode()
    assert screenshots in start
    assert "https://jkb.example.gov.cn" in start

    response = client.post(reverse("appeals:file-identify"), {
        "name": resident.name, "id_number": resident.reveal_id_number(), "phone": resident.phones.first().reveal_phone(),
    }, follow=True)
    assert minutes in response.content.decode()
