"""What a reveal shows is what the audit records: both reveal doors (a ticket's and a clearance
task's) show the ID number and the phones, and each writes a "revealed ID number" and a
"revealed phone" row before answering; before, the phones went out under the ID row only, so the
audit's "revealed phone" search found nobody who had seen a phone. And no code outside the
registry's door (and the senders that must dial or deliver) reads a number in clear."""

import re
from pathlib import Path

import pytest
from django.urls import reverse

from appeals.clearance import services as clearance_services
from communities.models import PersonalDataAccess, User
from tests.factories import CommunityFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _actions(actor, resident) -> list[str]:
    return sorted(PersonalDataAccess.objects.filter(actor=actor, resident=resident).exclude(
        action=PersonalDataAccess.Action.VIEW).values_list("action", flat=True))


def test_a_tickets_reveal_audits_the_id_number_and_the_phones(client):
    resident = ResidentFactory(phone="13311112222")
    appeal = AppealFactory(resident=resident)
    operator = UserFactory(role=User.Role.OPERATOR)
    client.force_login(operator)
    shown = client.post(reverse("appeals:ticket", args=[appeal.pk]), {"reason": "call back"}).content.decode()
    assert "13311112222" in shown
    assert _actions(operator, resident) == ["reveal_id", "reveal_phone"]


def test_a_tasks_reveal_audits_the_id_number_and_the_phones(client):
    home = CommunityFactory()
    task = clearance_services.clearance_open_for_appeal(appeal=RoutedAppealFactory(
        resident=ResidentFactory(community=home, phone="13311113333")))
    worker = WorkerFactory(communities=[home])
    client.force_login(worker)
    shown = client.post(reverse("clearance:task-action", args=[task.pk, "reveal"]), {"reason": "verify"})
    assert "13311113333" in shown.content.decode()
    assert _actions(worker, task.resident) == ["reveal_id", "reveal_phone"]
    assert PersonalDataAccess.objects.get(actor=worker, action="reveal_phone").reason == "verify"


# Who may read a number in clear: the registry's audited door, and the code that must dial or
# deliver it (SMS, the downstream feed an administrator configured), never a page or an API.
CLEAR_READERS = {
    "communities/services.py",   # resident_reveal_scoped: the audited door
    "communities/models.py",     # the accessors themselves
    "healthkit/notify.py",       # the SMS to the resident
    "healthkit/outbox.py",       # the downstream feed (docs/engine.md: ID number only if configured)
    "appeals/services.py",       # the evidence-request SMS goes to the resident's phone
}


def test_no_page_or_api_reads_a_number_in_clear_but_through_the_door():
    readers = set()
    for app in ("appeals", "communities", "healthkit", "venues"):
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            if re.search(r"\.reveal_(phone|id_number)\(\)", path.read_text()):
                readers.add(str(path.relative_to(ROOT)))
    assert readers <= CLEAR_READERS, sorted(readers - CLEAR_READERS)
