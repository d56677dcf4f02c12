"""Crafted worklist filters (NUL bytes, non-ASCII digits, out-of-range numbers) never turn
into a 500, on the page, the CSV or the API."""

import pytest
from rest_framework.test import APIClient

from tests.factories.clearance import ClearanceTaskFactory, WorkerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", [
    {"reference": "C²"}, {"reference": "\x00"}, {"reference": "C99999999999999999999"},
    {"community": "\x00"}, {"state": "\x00"}, {"page": "\x00"},
])
def test_worklist_page_and_csv_survive_crafted_filters(client, query):
    task = ClearanceTaskFactory()
    client.raise_request_exception = False
    client.force_login(WorkerFactory(communities=[task.community]))

    page = client.get("/console/clearance/", query)
    csv = client.get("/console/clearance/worklist.csv", query)

    if query.get("reference", "").startswith("C9"):  # longer than a reference: refused, nothing listed or exported
        assert page.status_code == 400 and not page.context["page"].object_list
        assert csv.status_code == 400 and not csv.get("Content-Disposition")
    else:
        assert page.status_code == 200
        assert csv.status_code == 200 and b"".join(csv.streaming_content).startswith("\ufeff".encode())


def test_reference_with_a_superscript_digit_matches_nothing(client):
    task = ClearanceTaskFactory()
    client.force_login(WorkerFactory(communities=[task.community]))
    response = client.get("/console/clearance/", {"reference": f"C{task.pk}²"})
    assert response.status_code == 200 and response.context["page"].paginator.count == 0


@pytest.mark.parametrize("query", [{"community": "\x00"}, {"community": "99999999999999999999"}, {"state": "\x00"}])
def test_api_list_answers_crafted_filters_without_a_500(query):
    task = ClearanceTaskFactory()
    api = APIClient()
    api.raise_request_exception = False
    api.force_authenticate(WorkerFactory(communities=[task.community]))
    assert api.get("/api/v1/clearance/tasks/", query).status_code in (200, 400)
