"""Every page renders in both languages (catches broken translations and template errors)."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_public_and_console_pages_render(language, resident_with_popup, supervisor):
    resident, popup = resident_with_popup
    appeal = AppealFactory(resident=resident, popup=popup, address_text="望京西园三区")
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    for name in ("appeals:start", "appeals:file-identify", "appeals:status"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert f'lang="{language}"' in response.content.decode()
    client.force_login(supervisor)
    for url in (reverse("appeals:queue"), reverse("appeals:phone-entry"), reverse("appeals:ticket", args=[appeal.pk]),
                reverse("console-home")):
        response = client.get(url)
        assert response.status_code == 200, url
    assert appeal.reference in client.get(reverse("appeals:queue")).content.decode()
