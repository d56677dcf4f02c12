"""Bulk admin actions at any table size (healthkit.admin_site.bulk_action_rows): "select all"
on a changelist capped at 10,000 rows acts on every matching row, so an action first says how
many rows it will change, changes at most BULK_ACTION_CAP of them in one statement once
confirmed, and Django's "delete selected" refuses a selection too large to list."""

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from healthkit import admin_site, sms
from healthkit.models import DownstreamEndpoint, OutboxDelivery, OutboxRecord, SmsMessage
from tests.factories import UserFactory, make_phone

pytestmark = pytest.mark.django_db

SMS_LIST = "admin:healthkit_smsmessage_changelist"


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(role="administrator", is_staff=True, is_superuser=True))
    return client


def _sms(n: int, state: str) -> list[int]:
    ids = []
    for _i in range(n):
        message = sms.sms_enqueue(phone=make_phone(), body="Your appeal was closed", purpose="appeal_closed",
                                  idempotency_key=f"bulk-{state}-{len(ids)}-{SmsMessage.objects.count()}")
        ids.append(message.pk)
    SmsMessage.objects.filter(pk__in=ids).update(state=state, attempts=sms.MAX_ATTEMPTS)
    return ids


def _select_all(page_ids: list[int], action: str = "requeue") -> dict:
    """What the changelist posts for "select all N" (the page's boxes ticked, select_across=1)."""
    return {"action": action, "_selected_action": page_ids, "select_across": "1", "index": "0"}


def test_select_all_asks_with_the_number_then_requeues_in_one_run(admin_client, sms_outbox):
    # given dead SMS and one already sent, all on the list
    dead = _sms(3, SmsMessage.State.DEAD)
    sent = _sms(1, SmsMessage.State.SENT)
    url = reverse(SMS_LIST)
    # when the administrator selects every row and runs "send again"
    with translation.override("en"):
        asked = admin_client.post(url, _select_all(dead[:1]), HTTP_ACCEPT_LANGUAGE="en")
    # then nothing has changed yet and the page says how many will be sent
    assert asked.status_code == 200
    assert "This will send 3 dead or failed SMS again." in asked.content.decode()
    assert set(SmsMessage.objects.filter(pk__in=dead).values_list("state", flat=True)) == {SmsMessage.State.DEAD}
    # when they confirm
    confirm = {"action": "requeue", "_selected_action": dead[:1], "select_across": "1", "confirm": "yes"}
    done = admin_client.post(url, confirm)
    # then the three dead ones (not only the ticked one) are queued again, the sent one untouched
    assert done.status_code == 302
    assert SmsMessage.objects.filter(pk__in=dead, attempts__lte=1).count() == 3
    assert SmsMessage.objects.get(pk=sent[0]).state == SmsMessage.State.SENT


def test_a_run_changes_at_most_the_cap_and_says_more_match(admin_client, monkeypatch, django_assert_max_num_queries):
    # given more dead SMS than one run takes
    monkeypatch.setattr(admin_site, "BULK_ACTION_CAP", 4)
    dead = _sms(7, SmsMessage.State.DEAD)
    url = reverse(SMS_LIST)
    with translation.override("en"):
        asked = admin_client.post(url, _select_all(dead[:2]), HTTP_ACCEPT_LANGUAGE="en")
    assert "This will send 4 dead or failed SMS again." in asked.content.decode()
    assert "More than 4 rows match" in asked.content.decode()
    # when confirmed: a fixed number of statements, whatever the rows (no loop over them)
    with django_assert_max_num_queries(25):
        admin_client.post(url, {"action": "requeue", "_selected_action": dead[:2], "select_across": "1",
                                "confirm": "yes"})
    # then exactly one run's worth changed, the oldest keys first
    assert SmsMessage.objects.filter(pk__in=dead).exclude(state=SmsMessage.State.DEAD).count() == 4
    assert SmsMessage.objects.get(pk=dead[-1]).state == SmsMessage.State.DEAD


def test_nothing_applicable_changes_nothing_and_says_so(admin_client):
    sent = _sms(2, SmsMessage.State.SENT)
    url = reverse(SMS_LIST)
    with translation.override("en"):
        response = admin_client.post(url, _select_all(sent), follow=True, HTTP_ACCEPT_LANGUAGE="en")
    assert "None of the selected rows applies" in response.content.decode()
    assert set(SmsMessage.objects.filter(pk__in=sent).values_list("state", flat=True)) == {SmsMessage.State.SENT}


def test_outbox_requeue_asks_then_makes_the_dead_rows_due(admin_client):
    endpoint = DownstreamEndpoint.objects.create(name="rail", url="https://rail.example/hook")
    dead = []
    for i in range(2):
        record = OutboxRecord.objects.create(idempotency_key=f"batch-{i}", kind=OutboxRecord.Kind.LIFTED, popup_type=1,
                                             at=timezone.now(), case_ids=[i + 1], resident_ids=[i + 1])
        dead.append(OutboxDelivery.objects.create(record=record, endpoint=endpoint, state=OutboxDelivery.State.DEAD).pk)
    url = reverse("admin:healthkit_outboxdelivery_changelist")
    with translation.override("en"):
        asked = admin_client.post(url, _select_all(dead[:1]), HTTP_ACCEPT_LANGUAGE="en")
    assert "This will requeue 2 dead or failed deliveries." in asked.content.decode()
    assert OutboxDelivery.objects.filter(pk__in=dead, state=OutboxDelivery.State.DEAD).count() == 2
    admin_client.post(url, {"action": "requeue", "_selected_action": dead[:1], "select_across": "1", "confirm": "yes"})
    assert OutboxDelivery.objects.filter(pk__in=dead, state=OutboxDelivery.State.PENDING).count() == 2


def test_delete_selected_refuses_a_selection_larger_than_it_can_list(admin_client, monkeypatch):
    # given more endpoints than "delete selected" may be given
    monkeypatch.setattr(admin_site, "BULK_DELETE_CAP", 2)
    ids = [DownstreamEndpoint.objects.create(name=f"e{i}", url=f"https://e{i}.example/hook").pk for i in range(3)]
    url = reverse("admin:healthkit_downstreamendpoint_changelist")
    # when every row is selected for deletion
    with translation.override("en"):
        response = admin_client.post(url, _select_all(ids[:1], action="delete_selected"), follow=True,
                                     HTTP_ACCEPT_LANGUAGE="en")
    # then nothing is collected or deleted and the page says why
    assert "More than 2 rows are selected: nothing was deleted." in response.content.decode()
    assert DownstreamEndpoint.objects.filter(pk__in=ids).count() == 3
    # and a selection within the bound reaches Django's own confirmation
    monkeypatch.setattr(admin_site, "BULK_DELETE_CAP", 5)
    asked = admin_client.post(url, _select_all(ids[:1], action="delete_selected"))
    assert asked.status_code == 200 and asked.templates[0].name == "admin/delete_selected_confirmation.html"
