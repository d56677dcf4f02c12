"""The login page, open to anyone: a user name longer than the account column is a form error in
the reader's language, never a 500 (Django's login form did not check its length, and django-axes
could not store the failed attempt: DataError, value too long for varchar(255))."""

import pytest
from axes.models import AccessAttempt
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("length", [151, 256, 100_000])
@pytest.mark.parametrize(("language", "message"), [("en", "at most 150 characters"), ("zh-hans", "150")])
def test_an_over_long_user_name_is_a_form_error(client, length, language, message):
    response = client.post(reverse("login"), {"username": "a" * length, "password": "x"},
                           HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    assert response.context["form"].errors["username"]
    assert message in response.content.decode()
    assert not AccessAttempt.objects.exists()  # nothing half-written


def test_a_user_name_of_the_full_length_still_logs_in(client):
    user = UserFactory(username="u" * 150)
    user.set_password("a long enough pass phrase")
    user.save()
    response = client.post(reverse("login"), {"username": "u" * 150, "password": "a long enough pass phrase"})
    assert response.status_code == 302
