"""Admin searches on big tables use an index or do not run (healthkit.admin_site): Django's
default search is `icontains` (or UPPER(...) for `^` and `=`), which reads every row; at a
million rows a resident phone by name took 0.5-0.7 s and a result by sample id 0.15-0.45 s.
An indexed search stays: an appeal's exact reference, a result's lab and sample id, a task's
number."""

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from appeals.clearance.models import ClearanceTask
from appeals.models import Appeal
from healthkit import admin_site
from healthkit.models import TestResult
from tests.factories import ResidentFactory, TestResultFactory, UserFactory
from tests.factories.appeals import AppealFactory
from tests.factories.clearance import ClearanceTaskFactory
from tests.plans import explain

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, monkeypatch):
    monkeypatch.setattr(admin_site, "BIG_TABLE_ROWS", 0)  # every table counts as big
    client.force_login(UserFactory(role="administrator", is_staff=True, is_superuser=True))
    return client


def _changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _search(client, url: str, term: str):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"q": term}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200, url
    return response, [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("model", [m for m, a in admin.site._registry.items() if a.search_fields],
                         ids=lambda m: m._meta.label)
def test_no_search_on_a_big_table_reads_every_row(admin_client, model):
    # given every table counted as big
    table = model._meta.db_table
    # when a search is typed into the changelist
    response, queries = _search(admin_client, _changelist(model), "S000012")
    # then no statement on the table matches text by a pattern or in upper case (no index
    # serves either): the search is an exact or keyed look-up, or it is refused with a message
    scans = [q for q in queries if f'"{table}"' in q and (" LIKE " in q or "UPPER(" in q)]
    assert not scans, scans
    if not response.context["cl"].queryset.query.is_empty():
        return
    # nothing searched: either refused, and the page says so, or the admin's own indexed look-up
    text = response.content.decode()
    assert ("too long to search that way" in text or "Give the lab and the sample id" in text
            or getattr(response.context["cl"].model_admin, "indexed_search", False))


def test_resident_phones_by_name_are_refused_with_a_message(admin_client):
    from communities.models import ResidentPhone

    ResidentFactory(name="王小明", phone="13800138000")
    response, queries = _search(admin_client, _changelist(ResidentPhone), "王")
    assert "too long to search that way" in response.content.decode()
    assert not any("王" in q for q in queries)


def test_a_result_is_found_by_lab_and_sample_id_through_the_unique_key(admin_client):
    result = TestResultFactory(lab="lab-03", sample_id="S0000012")
    response, _queries = _search(admin_client, _changelist(TestResult), "lab-03/S0000012")
    assert list(response.context["cl"].result_list) == [result]
    plan = explain(TestResult.objects.filter(lab="lab-03", sample_id="S0000012", superseded_at__isnull=True))
    assert "result_unique_current_sample" in plan, plan
    # a sample id alone would read every result: the page asks for the lab too
    response, _queries = _search(admin_client, _changelist(TestResult), "S0000012")
    assert "Give the lab and the sample id" in response.content.decode()


def test_an_appeal_is_found_by_its_exact_reference_in_any_case(admin_client):
    appeal = AppealFactory(reference="HK2026AB12")
    AppealFactory(reference="HK2026AB123")
    response, queries = _search(admin_client, _changelist(Appeal), " hk2026ab12 ")
    assert list(response.context["cl"].result_list) == [appeal]


def test_a_task_is_found_by_its_number(admin_client):
    task = ClearanceTaskFactory(created_at=timezone.now())
    for term in (f"C{task.pk}", str(task.pk)):
        response, _queries = _search(admin_client, _changelist(ClearanceTask), term)
        assert list(response.context["cl"].result_list) == [task]
    response, _queries = _search(admin_client, _changelist(ClearanceTask), "C12x")
    assert list(response.context["cl"].result_list) == []
