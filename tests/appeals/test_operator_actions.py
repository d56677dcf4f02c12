"""Each operator action through the console, and the history event it writes."""

import pytest
from django.urls import reverse

from appeals.models import Appeal, AppealContact, AppealEvent, AppealLink
from appeals.services import appeal_close, appeal_link_submit
from communities.models import PersonalDataAccess
from healthkit.models import SmsMessage
from tests.factories import CommunityFactory, make_id_number
from tests.factories.appeals import AppealFactory, image_bytes, upload
from tests.sms_text import phone_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def appeal(resident_with_popup):
    resident, popup = resident_with_popup
    return AppealFactory(resident=resident, popup=popup, popup_type_claimed=3, contact_phone_masked="138****8000")


def act(client, appeal, action, **data):
    return client.post(reverse("appeals:ticket-action", args=[appeal.pk, action]), data)


def kinds(appeal):
    return list(appeal.events.values_list("kind", flat=True))


def test_assign_to_me_takes_the_appeal_and_logs_it(client, appeal, operator):
    client.force_login(operator)
    act(client, appeal, "assign-me")
    appeal.refresh_from_db()
    assert appeal.assigned_to == operator and appeal.status == Appeal.Status.IN_PROGRESS
    assert kinds(appeal) == [AppealEvent.Kind.ASSIGNED, AppealEvent.Kind.STATUS_CHANGED]


def test_assign_to_another_operator(client, appeal, operator, operator_b):
    client.force_login(operator)
    act(client, appeal, "assign", assignee=operator_b.pk)
    appeal.refresh_from_db()
    assert appeal.assigned_to == operator_b
    assert appeal.events.get(kind=AppealEvent.Kind.ASSIGNED).actor == operator


def test_set_priority_recomputes_the_sla(client, appeal, operator, settings):
    client.force_login(operator)
    act(client, appeal, "priority", priority=1, reason="hospital appointment tomorrow")
    appeal.refresh_from_db()
    assert appeal.priority == 1
    assert (appeal.sla_due_at - appeal.created_at).total_seconds() == settings.APPEALS_SLA_HOURS[1] * 3600
    event = appeal.events.get(kind=AppealEvent.Kind.PRIORITY_SET)
    assert event.data == {"from": 3, "to": 1} and event.note == "hospital appointment tomorrow"


def test_merge_duplicates_moves_evidence_and_closes_the_duplicate(client, appeal, operator):
    from appeals.services import evidence_store

    duplicate = AppealFactory(resident=appeal.resident, category="other")
    evidence_store(upload=upload(), appeal=duplicate)
    client.force_login(operator)
    act(client, duplicate, "merge", into_reference=appeal.reference.lower())
    duplicate.refresh_from_db()
    appeal.refresh_from_db()
    assert duplicate.status == Appeal.Status.CLOSED and duplicate.merged_into == appeal and duplicate.outcome == "merged"
    assert appeal.evidence.count() == 1 and appeal.repeat_count == 1
    assert AppealEvent.Kind.MERGED in kinds(duplicate) and AppealEvent.Kind.MERGED_IN in kinds(appeal)


def test_merge_of_different_residents_is_refused(client, appeal, operator):
    other = AppealFactory()
    client.force_login(operator)
    response = act(client, other, "merge", into_reference=appeal.reference)
    other.refresh_from_db()
    assert other.status == Appeal.Status.NEW
    # back to the ticket, the reason once, the reference typed kept for the form
    assert response.status_code == 302 and response["Location"] == reverse("appeals:ticket", args=[other.pk])
    page = client.get(response["Location"]).content.decode()
    assert page.count("same resident") == 1
    assert appeal.reference in page


def test_request_evidence_sends_a_single_use_link_and_the_answer_resumes_the_appeal(client, appeal, operator, settings):
    settings.OFFICIAL_SITE_URL = "https://12345.example.gov.cn"
    client.force_login(operator)
    act(client, appeal, "request-evidence", message="Please add your latest test report.")
    appeal.refresh_from_db()
    assert appeal.status == Appeal.Status.WAITING_RESIDENT
    sms = SmsMessage.objects.get(purpose="appeal_evidence_request")
    text = phone_text(sms)
    assert "https://12345.example.gov.cn/appeals/evidence-link/" in text and "latest test report" in text
    token = text.split("/appeals/evidence-link/")[1].split("/")[0]
    assert token not in sms.body  # the stored text keeps the token masked
    assert AppealLink.objects.get().token_hash != token  # only the hash is stored
    # the resident opens the link and sends a picture
    anonymous = client.__class__(HTTP_ACCEPT_LANGUAGE="en")
    page = anonymous.get(reverse("appeals:evidence-link", args=[token]))
    assert page.status_code == 200 and appeal.reference in page.content.decode()
    response = anonymous.post(reverse("appeals:evidence-link", args=[token]), {"note": "here", "files": [upload()]})
    assert "Thank you" in response.content.decode()
    appeal.refresh_from_db()
    assert appeal.status == Appeal.Status.IN_PROGRESS and appeal.evidence.count() == 1
    assert {AppealEvent.Kind.EVIDENCE_REQUESTED, AppealEvent.Kind.EVIDENCE_ADDED} <= set(kinds(appeal))
    # used once: a second visit is refused
    assert anonymous.get(reverse("appeals:evidence-link", args=[token])).status_code == 410


def test_expired_link_is_refused(appeal, operator):
    from appeals.services import appeal_request_evidence

    link = appeal_request_evidence(appeal=appeal, actor=operator)
    token = phone_text(SmsMessage.objects.get()).split("/appeals/evidence-link/")[1].split("/")[0]
    AppealLink.objects.filter(pk=link.pk).update(expires_at=link.created_at)
    from healthkit.errors import ApplicationError

    with pytest.raises(ApplicationError, match="no longer valid"):
        appeal_link_submit(token=token, uploads=[upload(data=image_bytes())])


def test_route_to_the_suggested_community_starts_clearance(client, appeal, operator, community,
                                                          django_capture_on_commit_callbacks, monkeypatch):
    calls = []
    from appeals.clearance import tasks

    monkeypatch.setattr(tasks.clearance_open_for_appeal, "delay", lambda pk: calls.append(pk))
    client.force_login(operator)
    page = client.get(reverse("appeals:ticket", args=[appeal.pk])).content.decode()
    assert f'name="community" value="{community.pk}"' in page  # suggested from the registry
    with django_capture_on_commit_callbacks(execute=True):
        act(client, appeal, "route", community=community.pk, reason="resident lives here")
    appeal.refresh_from_db()
    assert appeal.status == Appeal.Status.ROUTED and appeal.routed_community == community and appeal.routed_at
    assert appeal.events.get(kind=AppealEvent.Kind.ROUTED).data["community"] == community.pk
    assert calls == [appeal.pk]


def test_route_by_community_code(client, appeal, operator, monkeypatch):
    from appeals.clearance import tasks

    monkeypatch.setattr(tasks.clearance_open_for_appeal, "delay", lambda pk: None)
    target = CommunityFactory()
    client.force_login(operator)
    act(client, appeal, "route", community_code=target.code)
    appeal.refresh_from_db()
    assert appeal.routed_community == target


def test_close_with_a_reason_and_close_is_idempotent(client, appeal, operator):
    client.force_login(operator)
    act(client, appeal, "close", outcome="lifted", reason="Community verified; popup lifted")
    appeal.refresh_from_db()
    assert appeal.status == Appeal.Status.CLOSED and appeal.outcome == "lifted" and appeal.closed_at
    again = appeal_close(appeal=appeal, actor=operator, reason="again", outcome="other")
    assert again.outcome == "lifted"
    assert kinds(appeal).count(AppealEvent.Kind.CLOSED) == 1


def test_call_log_entry(client, appeal, operator):
    client.force_login(operator)
    act(client, appeal, "contact", direction="outbound", outcome="no_answer", note="tried twice")
    contact = AppealContact.objects.get()
    assert (contact.operator, contact.outcome, contact.note) == (operator, "no_answer", "tried twice")
    event = appeal.events.get(kind=AppealEvent.Kind.CONTACT)
    assert event.data["outcome"] == "no_answer" and not event.public
    page = client.get(reverse("appeals:ticket", args=[appeal.pk])).content.decode()
    assert "No answer" in page and "tried twice" in page


def test_reveal_is_audited_and_shown_once(client, appeal, operator):
    client.force_login(operator)
    id_number = appeal.resident.reveal_id_number()
    page = client.get(reverse("appeals:ticket", args=[appeal.pk])).content.decode()
    assert id_number not in page and appeal.resident.masked in page
    response = client.post(reverse("appeals:ticket", args=[appeal.pk]), {"reason": "caller asked to confirm"})
    assert id_number in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert PersonalDataAccess.objects.filter(actor=operator, action=PersonalDataAccess.Action.REVEAL_ID).count() == 1
    assert appeal.events.get(kind=AppealEvent.Kind.REVEALED).note == "caller asked to confirm"


def test_phone_appeal_is_entered_with_the_call_logged(client, operator, community):
    client.force_login(operator)
    number = make_id_number()
    response = client.post(reverse("appeals:phone-entry"), {
        "name": "孙七", "id_number": number, "phone": "13500001234", "category": "stranded",
        "popup_type_claimed": "1", "outside_since": "2022-10-08",
        "address": "望京西园三区", "description": "In Urumqi since October",
        "call_outcome": "reached", "call_note": "called from Urumqi", "identity_acknowledged": "on"})
    appeal = Appeal.objects.get()
    assert appeal.resident is None and appeal.filer_unconfirmed  # an unregistered ID: nobody is registered
    assert response.url == reverse("appeals:ticket", args=[appeal.pk])
    assert appeal.channel == Appeal.Channel.PHONE and appeal.created_by == operator
    assert appeal.priority == Appeal.Priority.HIGH and appeal.community == community
    assert appeal.contacts.get().direction == AppealContact.Direction.INBOUND
    assert [e.kind for e in appeal.events.all()] == [AppealEvent.Kind.FILED, AppealEvent.Kind.CONTACT]


def test_community_worker_cannot_act(client, appeal, community):
    from communities.models import User
    from tests.factories import UserFactory

    worker = UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[community])
    client.force_login(worker)
    assert act(client, appeal, "assign-me").status_code == 403


def test_a_bad_picture_in_an_evidence_answer_keeps_the_link_usable_and_leaves_no_files(appeal, operator, settings):
    import os

    from appeals.services import appeal_request_evidence
    from healthkit.errors import ApplicationError

    appeal_request_evidence(appeal=appeal, actor=operator)
    token = phone_text(SmsMessage.objects.get()).split("/appeals/evidence-link/")[1].split("/")[0]
    with pytest.raises(ApplicationError, match="not a PNG"):
        appeal_link_submit(token=token, uploads=[upload(data=image_bytes()), upload("x.png", b"nope")])
    files = [f for _root, _dirs, names in os.walk(settings.PRIVATE_MEDIA_ROOT) for f in names]
    assert files == [] and appeal.evidence.count() == 0
    appeal_link_submit(token=token, uploads=[upload(data=image_bytes())])
    assert appeal.evidence.count() == 1
