"""The language switch leads back to a page that answers GET: after a refused ticket action (the
ticket shown again at the action's POST-only address) it led to "405 method not allowed"."""

import re

import pytest
from django.urls import reverse

from communities.models import User
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def language_next(html: str) -> str:
    return re.search(r'<input name="next" type="hidden" value="([^"]*)">', html).group(1).replace("&amp;", "&")


def test_switching_language_after_a_refused_action_returns_to_the_ticket(client):
    # given an operator on a ticket opened from the "new" queue
    client.force_login(User.objects.create_user("op", password="pass-1234-word", role=User.Role.OPERATOR))
    appeal = AppealFactory()
    ticket = f"{reverse('appeals:ticket', args=[appeal.pk])}?from=queue%3Dnew"
    assert language_next(client.get(ticket).content.decode()) == ticket
    # when a merge into an unknown reference is refused: back to the ticket, its queue place kept
    refused = client.post(reverse("appeals:ticket-action", args=[appeal.pk, "merge"]),
                          {"into_reference": "261201-NOSUCH1", "from": "queue=new"},
                          HTTP_REFERER=f"http://testserver{ticket}")
    assert refused.status_code == 302 and refused["Location"] == ticket
    # then the language switch on that page leads back to the ticket, which answers
    page = client.get(refused["Location"]).content.decode()
    switched = client.post(reverse("set_language"), {"language": "en", "next": language_next(page)})
    assert switched.status_code == 302 and switched.url == ticket
    assert client.get(switched.url).status_code == 200
