"""Exports: the dashboard's figures as CSV/XLSX; the appeal, task and popup lists as filtered,
masked, scoped to the exporter and recorded in the personal-data audit with a reason."""

import io
import zipfile

import pytest
from django.urls import reverse

from appeals.oversight import services
from communities.models import PersonalDataAccess, User
from tests.factories import CommunityFactory, PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory
from tests.factories.clearance import ClearanceTaskFactory

pytestmark = pytest.mark.django_db


def _xlsx_text(response) -> str:
    data = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        return "".join(book.read(n).decode() for n in book.namelist() if n.startswith("xl/worksheets/"))


def _csv_text(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8-sig")


def test_figures_export_as_csv_and_xlsx(client):
    PopupCaseFactory(resident=ResidentFactory(), popup_type=3)
    services.summary_refresh()
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    text = _csv_text(client.get(reverse("oversight:export-summary"), {"format": "csv"}, HTTP_ACCEPT_LANGUAGE="en"))
    assert "Active popups,1" in text and "Open popups by type" in text
    xlsx = client.get(reverse("oversight:export-summary"), {"format": "xlsx"}, HTTP_ACCEPT_LANGUAGE="en")
    assert xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "Active popups" in _xlsx_text(xlsx)


def test_appeal_export_is_masked_filtered_and_audited(client):
    resident = ResidentFactory(name="张三丰")
    AppealFactory(resident=resident, category="stranded")
    AppealFactory(resident=ResidentFactory(name="李四光"), category="correction")
    user = UserFactory(role=User.Role.SUPERVISOR)
    client.force_login(user)

    for fmt, read in (("csv", _csv_text), ("xlsx", _xlsx_text)):
        response = client.post(reverse("oversight:export-appeals"),
                               {"reason": "weekly stranded report", "format": fmt, "query": "category=stranded"})
        text = read(response)
        assert resident.masked in text and "张三丰" not in text
        assert "李" not in text  # filtered out
    audit = PersonalDataAccess.objects.filter(actor=user, action=PersonalDataAccess.Action.EXPORT)
    assert audit.count() == 2 and audit.first().reason == "weekly stranded report"


def test_export_needs_a_reason_and_a_post(client):
    AppealFactory()
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    assert client.get(reverse("oversight:export-appeals")).status_code == 405
    response = client.post(reverse("oversight:export-appeals"), {"format": "csv", "query": ""})
    assert response.status_code == 302 and not PersonalDataAccess.objects.exists()


def test_worker_exports_only_their_communities_tasks_and_popups(client):
    mine, other = CommunityFactory(), CommunityFactory()
    own = ClearanceTaskFactory(resident=ResidentFactory(community=mine))
    ClearanceTaskFactory(resident=ResidentFactory(community=other))
    client.force_login(UserFactory(role=User.Role.COMMUNITY_WORKER, communities=[mine]))
    text = _csv_text(client.post(reverse("oversight:export-tasks"),
                                 {"reason": "daily follow-up", "format": "csv", "query": "state=all"}))
    assert own.reference in text and text.count("\n") == 2  # header + one task
    text = _csv_text(client.post(reverse("oversight:export-popups"),
                                 {"reason": "daily follow-up", "format": "csv", "query": ""}))
    assert own.resident.masked in text and text.count("\n") == 2


def test_exports_label_choices_from_one_table_not_get_display_per_row(client, monkeypatch):
    """Django's get_FOO_display rebuilds every choice's label on each call: 40 % of a 300,000-row
    export. The exports read healthkit.spreadsheet.ChoiceLabels instead, with the same words."""
    from django.db.models import base

    from appeals.models import Appeal

    community = CommunityFactory()
    AppealFactory.create_batch(3, resident=ResidentFactory(community=community), category="stranded",
                               status="in_progress", community=community)
    PopupCaseFactory(resident=ResidentFactory(community=community), state="active")
    ClearanceTaskFactory(community=community)
    expected = [str(label) for label in (Appeal.Category.STRANDED.label, Appeal.Status.IN_PROGRESS.label)]

    def refuse(*args, **kwargs):
        raise AssertionError("an export called get_FOO_display")

    monkeypatch.setattr(base, "make_hashable", refuse)  # read by get_FOO_display only, on each call
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    texts = [_csv_text(client.post(reverse(f"oversight:export-{name}"), {"reason": "weekly report", "format": "csv"}))
             for name in ("appeals", "tasks", "popups")]
    texts.append(b"".join(client.get(reverse("clearance:worklist-csv")).streaming_content).decode("utf-8-sig"))
    assert all(label in texts[0] for label in expected), texts[0]
    assert texts[0].count(expected[0]) == 3
    assert all(text.count("\n") >= 2 for text in texts), texts
