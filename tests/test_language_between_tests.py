"""A request's language must not outlive its test: the locale middleware activates the language a
request asks for on the thread, and without the suite's reset (tests/conftest.py) every test after
an English request ran in English, so tests passed or failed by the order they ran in."""

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

pytestmark = pytest.mark.django_db


def test_a_request_in_english_activates_english_on_the_thread(client):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert translation.get_language() == "en"


def test_the_next_test_starts_in_the_default_language():
    assert translation.get_language() == settings.LANGUAGE_CODE == "zh-hans"
    assert translation.gettext("This field is required.") == "此项为必填项。"
