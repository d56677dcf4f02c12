"""The status page tells the history in plain words with the role of who acted (never a staff
account name) and the next step with its expected time."""

import pytest
from django.urls import reverse
from django.utils import timezone

from appeals.clearance import services as clearance
from appeals.clearance.models import ClearanceTask
from appeals.services import appeal_assign, appeal_file, appeal_route
from tests.factories import CommunityFactory

pytestmark = pytest.mark.django_db


def _status(client, appeal, phone="13800138000"):
    return client.post(reverse("appeals:status"), {
        "reference": appeal.reference, "id_number": appeal.resident.reveal_id_number(), "phone": phone,
    }).content.decode()


def test_history_in_plain_words_with_roles_and_the_next_step(client, resident_with_popup, operator,
                                                             django_capture_on_commit_callbacks):
    resident, popup = resident_with_popup
    appeal, _ = appeal_file(resident=resident, popup=popup, category="correction", contact_phone="13800138000")
    page = _status(client, appeal)
    due = timezone.localtime(appeal.sla_due_at).strftime("%Y-%m-%d %H:%M")
    assert "A 12345 operator checks your appeal and answers." in page and f"Expected by {due}." in page

    appeal_assign(appeal=appeal, assignee=operator, actor=operator)
    community = CommunityFactory(name="花家地社区")
    with django_capture_on_commit_callbacks(execute=True):
        appeal_route(appeal=appeal, community=community, actor=operator)
    task = ClearanceTask.objects.get(appeal=appeal)
    page = _status(client, appeal)
    history = page.split('id="status-history"')[1]
    assert "We received your appeal." in history
    assert "A 12345 operator started handling your appeal." in history
    assert "Your appeal was passed to " in history and "花家地社区 to check your details." in history
    assert "Your community sent you an SMS link to confirm your details." in history
    assert "Status changed" not in page
    assert "12345 hotline" in history
    assert operator.username not in page  # roles, never staff account names
    assert "Confirm your details through the link in your community&#x27;s SMS." in page

    clearance.clearance_confirm_submit(token=clearance.clearance_link_issue(task=task)[1], confirmation={
        "location": "inside", "current_place": "望京", "address": "1号楼"})
    page = _status(client, appeal)
    assert "You confirmed your details; the community is checking them." in page
    task.refresh_from_db()
    assert "Your community is checking your details." in page
    assert f"Expected by {timezone.localtime(task.sla_due_at).strftime('%Y-%m-%d %H:%M')}." in page


def test_a_filer_not_on_record_sees_no_community_name(client, resident_with_popup, operator,
                                                      django_capture_on_commit_callbacks):
    resident, _popup = resident_with_popup
    appeal, _ = appeal_file(resident=resident, popup_type_claimed=3, category="correction",
                            contact_phone="13911112222", filer_unconfirmed=True)
    with django_capture_on_commit_callbacks(execute=True):
        appeal_route(appeal=appeal, community=CommunityFactory(name="花家地社区"), actor=operator)
    page = _status(client, appeal, phone="13911112222")
    assert "passed to the responsible community" in page
    assert "花家地社区" not in page
    assert "The responsible community is checking the details." in page


def test_the_residents_own_steps_say_you_not_the_filing_steps_label(client, resident_with_popup):
    """"You" is two words in Chinese: who acted (您) in the history, and the filing step about the
    person (个人信息) in the step bar; one source string gave the history 个人信息."""
    resident, popup = resident_with_popup
    appeal, _ = appeal_file(resident=resident, popup=popup, category="correction", contact_phone="13800138000")
    page = client.post(reverse("appeals:status"), {
        "reference": appeal.reference, "id_number": resident.reveal_id_number(), "phone": "13800138000",
    }, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    history = page[page.index('<ol class="history"'):]
    history = history[:history.index("</ol>")]
    assert "您" in history and "个人信息" not in history
    step_bar = client.get(reverse("appeals:file-identify"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "个人信息" in step_bar
