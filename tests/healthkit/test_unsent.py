"""A staff form sent after the session ended keeps what was typed (encrypted, never a password or
the form's tokens) for the page the person logs back in to, once and not for long."""

import pytest
from django.conf import settings
from django.urls import reverse

from communities.models import User
from healthkit import unsent
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db


def test_what_was_typed_waits_encrypted_for_the_page_and_is_given_once(client, settings):
    # given an operator's ticket form sent by a browser whose session has ended
    User.objects.create_user("op", password="pass-1234-word", role=User.Role.OPERATOR)
    appeal = AppealFactory()
    ticket = reverse("appeals:ticket", args=[appeal.pk])
    response = client.post(reverse("appeals:ticket-action", args=[appeal.pk, "contact"]),
                           {"note": "回电无人接听", "seen": "123", "once": "tok", "password": "x", "from": "q=1"},
                           HTTP_REFERER=f"http://testserver{ticket}")
    assert response.status_code == 302 and "/accounts/login/" in response.url
    # then the session holds it encrypted, without the form's tokens or a password
    kept = client.session[unsent.SESSION_KEY]
    assert "回电无人接听" not in kept and "note" not in kept
    # the login page does not take it; the ticket page, after logging in, does, once
    assert client.get(reverse("login")).context.get("unsent_form") is None
    assert client.login(username="op", password="pass-1234-word")
    shown = client.get(ticket, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert shown.context["unsent_form"] == {"action": reverse("appeals:ticket-action", args=[appeal.pk, "contact"]),
                                            "fields": [["note", "回电无人接听"]]}
    assert "回电无人接听" in shown.content.decode() and "未记录：您输入的内容" in shown.content.decode()
    assert client.get(ticket).context["unsent_form"] is None


def test_what_was_typed_is_not_kept_past_its_time(client, monkeypatch):
    appeal = AppealFactory()
    ticket = reverse("appeals:ticket", args=[appeal.pk])
    client.post(reverse("appeals:ticket-action", args=[appeal.pk, "contact"]), {"note": "稍后再拨"},
                HTTP_REFERER=f"http://testserver{ticket}")
    client.force_login(User.objects.create_user("op", password="pass-1234-word", role=User.Role.OPERATOR))
    monkeypatch.setattr(unsent, "KEPT_SECONDS", -1)  # as if logging in had taken longer than it may
    assert client.get(ticket).context["unsent_form"] is None
    assert unsent.SESSION_KEY not in client.session


def test_what_one_person_typed_is_never_shown_to_the_next_person_at_the_desk(client):
    # given an operator signed in at a shared desk, whose session then ends mid-form
    first = User.objects.create_user("op1", password="pass-1234-word", role=User.Role.OPERATOR)
    User.objects.create_user("op2", password="pass-1234-word", role=User.Role.OPERATOR)
    appeal = AppealFactory()
    ticket = reverse("appeals:ticket", args=[appeal.pk])
    client.force_login(first)
    assert client.get(ticket).status_code == 200
    client.cookies.pop(settings.SESSION_COOKIE_NAME)  # the session ended
    client.post(reverse("appeals:ticket-action", args=[appeal.pk, "contact"]), {"note": "居民称已返京"},
                HTTP_REFERER=f"http://testserver{ticket}")
    assert unsent.SESSION_KEY in client.session
    # when a colleague logs in at the same desk and opens that page
    assert client.login(username="op2", password="pass-1234-word")
    shown = client.get(ticket)
    # then nothing of it is shown, and it is gone
    assert shown.context["unsent_form"] is None and "居民称已返京" not in shown.content.decode()
    assert unsent.SESSION_KEY not in client.session
