"""The resident's SMS link: signed, expiring, single-use; tampered, expired or reused links get a
page saying what to do and no data."""

import datetime as dt

import pytest
from django.core import signing
from django.urls import reverse

from appeals.clearance import services
from appeals.clearance.models import ClearanceLink, ClearanceTask
from healthkit import clock
from tests.clearance.helpers import confirmation_post, token_in
from tests.factories.clearance import ClearanceTaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(sms_outbox, django_capture_on_commit_callbacks):
    task = ClearanceTaskFactory(popup__popup_type=1, origin="misattribution")
    with django_capture_on_commit_callbacks(execute=True):
        link, token = services.clearance_link_issue(task=task)
    assert token_in(sms_outbox.outbox[-1]) == token
    return task, link, token


def _assert_refused_without_data(response, task, reason):
    body = response.content.decode()
    assert response.status_code in (404, 410)
    assert f'data-reason="{reason}"' in body
    assert task.community.name not in body
    assert task.resident.name[0] + "*" not in body and task.resident.id_masked not in body
    assert "<form method=\"post\" novalidate>" not in body


def test_url_carries_only_an_opaque_token_and_the_database_only_its_hash(issued):
    task, link, token = issued
    assert task.resident.id_masked not in token and str(task.pk) not in token.split(".")[0][:3]
    assert link.token_hash != token and token.split(".")[0] not in link.token_hash


def test_valid_link_shows_the_form_without_spending_it(client, issued):
    task, link, token = issued
    url = reverse("clearance:link", args=[token])
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200
    link.refresh_from_db()
    assert link.used_at is None


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),        # signature altered
    lambda t: "x" + t[1:] if not t.startswith("x") else "y" + t[1:],     # token altered
    lambda t: t.split(".")[0],                                           # signature stripped
])
def test_tampered_link_is_refused(client, issued, mangle):
    task, _link, token = issued
    response = client.get(reverse("clearance:link", args=[mangle(token)]))
    _assert_refused_without_data(response, task, "invalid")
    response = client.post(reverse("clearance:link", args=[mangle(token)]), confirmation_post())
    _assert_refused_without_data(response, task, "invalid")
    task.refresh_from_db()
    assert task.confirmed_at is None


def test_well_signed_but_unknown_token_is_refused(client, issued):
    task, _link, _token = issued
    forged = signing.Signer(salt="clearance.link", sep=".").sign("not-a-token-we-issued")
    _assert_refused_without_data(client.get(reverse("clearance:link", args=[forged])), task, "invalid")


def test_expired_link_is_refused(client, issued, settings):
    task, link, token = issued
    with clock.frozen_at(link.expires_at + dt.timedelta(seconds=1)):
        _assert_refused_without_data(client.get(reverse("clearance:link", args=[token])), task, "expired")
        response = client.post(reverse("clearance:link", args=[token]), confirmation_post())
        _assert_refused_without_data(response, task, "expired")
    task.refresh_from_db()
    assert task.state == ClearanceTask.State.OPEN and task.confirmation == {}


def test_expiry_comes_from_settings(settings, sms_outbox):
    settings.CLEARANCE_LINK_TTL_HOURS = 5
    task = ClearanceTaskFactory()
    link, _token = services.clearance_link_issue(task=task)
    assert link.expires_at - link.created_at == dt.timedelta(hours=5)


def test_replayed_link_is_refused_and_changes_nothing(client, issued):
    task, _link, token = issued
    url = reverse("clearance:link", args=[token])
    assert client.post(url, confirmation_post(current_place="北京市朝阳区")).status_code == 200
    replay = client.post(url, confirmation_post(current_place="别处"))
    _assert_refused_without_data(replay, task, "used")
    _assert_refused_without_data(client.get(url), task, "used")
    task.refresh_from_db()
    assert task.confirmation["current_place"] == "北京市朝阳区"


def test_single_use_is_enforced_by_the_database_not_the_page(issued):
    # Two submissions that both passed the page's check: the conditional UPDATE lets one win.
    task, _link, token = issued
    services.clearance_confirm_submit(token=token, confirmation={"location": "in_city"})
    with pytest.raises(services.LinkRefused) as refused:
        services.clearance_confirm_submit(token=token, confirmation={"location": "outside"})
    assert refused.value.extra["reason"] == "used"
    assert ClearanceLink.objects.get(task=task).used_at is not None


def test_invalid_form_does_not_spend_the_link(client, issued):
    _task, link, token = issued
    response = client.post(reverse("clearance:link", args=[token]), confirmation_post(contact_phone="123"))
    assert response.status_code == 400
    link.refresh_from_db()
    assert link.used_at is None


def test_link_of_a_decided_task_is_refused(client, issued):
    task, _link, token = issued
    services.clearance_accept(task=task, actor=None, actor_label="clearance", reason="已核实")
    _assert_refused_without_data(client.get(reverse("clearance:link", args=[token])), task, "closed")


def test_pages_name_the_official_site_and_never_ask_for_money(client, issued, settings):
    _task, _link, token = issued
    body = client.get(reverse("clearance:link", args=[token])).content.decode()
    assert settings.OFFICIAL_SITE_URL in body
    refused = client.get(reverse("clearance:link", args=["nope"])).content.decode()
    assert settings.OFFICIAL_SITE_URL in refused


def test_link_pages_are_rate_limited_per_address(client, issued, settings):
    settings.CLEARANCE_LINK_RATE_LIMIT = "3/600"
    _task, _link, token = issued
    url = reverse("clearance:link", args=[token])
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    busy = client.get(url)
    assert busy.status_code == 429 and 'data-reason="busy"' in busy.content.decode()
    # another address is not affected
    assert client.get(url, REMOTE_ADDR="10.1.2.3").status_code == 200
