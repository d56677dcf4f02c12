"""A community worker's lists read their communities' rows through an index led by the scope,
the page's cursor an index condition: appeals by the responsible community
(appeal_responsible_idx), popups by the worker's residents (popup_resident_seek_idx), clearance
tasks by community (clearance_community_seek_idx). Before, each read the city-wide order and
dropped other communities' rows one by one (26 k appeals for 51 at a million rows).

Each test copies a few thousand rows of a community the worker does not serve, so the planner
(after ANALYZE) weighs the scoped index against that walk as it does at scale."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from appeals.clearance.models import ClearanceTask
from appeals.clearance.selectors import tasks_visible_to
from appeals.filters import AppealFilter
from appeals.models import Appeal
from appeals.selectors import appeals_visible_to
from communities.models import Resident, User
from communities.selectors import residents_visible_to
from healthkit.models import PopupCase
from healthkit.selectors import PopupListFilters, popup_list
from tests.factories import CommunityFactory, PopupCaseFactory, ResidentFactory, UserFactory
from tests.factories.appeals import AppealFactory
from tests.factories.clearance import ClearanceTaskFactory
from tests.plans import explain

pytestmark = pytest.mark.django_db

OTHERS = 3000


def _copy(model, row_pk: int, changed: dict[str, str]) -> None:
    """OTHERS copies of one row (g = 1..OTHERS in the SQL of `changed`), then ANALYZE."""
    table = model._meta.db_table
    kept = [f.column for f in model._meta.concrete_fields if not f.primary_key and f.column not in changed]
    names = ", ".join([*kept, *changed])
    values = ", ".join([*kept, *changed.values()])
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({names}) SELECT {values} FROM {table}, "  # noqa: S608
                       f"generate_series(1, {OTHERS}) g WHERE id = %s", [row_pk])
        cursor.execute(f"ANALYZE {table}")


def _index_scan(plan: str, index: str) -> list[str]:
    """The index scan node on `index` and its condition lines."""
    lines = plan.splitlines()
    start = next((i for i, line in enumerate(lines) if f"using {index} " in line), None)
    assert start is not None, plan
    return lines[start:start + 3]


@pytest.fixture
def worker(db):
    mine = CommunityFactory()
    user = UserFactory(role=User.Role.COMMUNITY_WORKER)
    user.communities.add(mine)
    user.mine = mine
    return user


def test_a_workers_appeal_list_reads_the_responsible_communitys_index(worker):
    # given the worker's appeals (one named, one routed to them) among thousands of another community
    other = CommunityFactory()
    now = timezone.now()
    AppealFactory(resident=ResidentFactory(community=worker.mine), created_at=now)
    routed = AppealFactory(resident=ResidentFactory(community=other), routed_community=worker.mine,
                           status=Appeal.Status.ROUTED, created_at=now - dt.timedelta(minutes=1))
    template = AppealFactory(resident=ResidentFactory(community=other))
    _copy(Appeal, template.pk, {"reference": "'B' || g", "created_at": "created_at - g * interval '1 minute'"})
    # when the REST list's next page's keys are planned (newest first, DRF's cursor `created_at < …`)
    qs = AppealFilter({"queue": "open"}, queryset=appeals_visible_to(worker), user=worker).qs
    keys = qs.values("id", "created_at").order_by("-created_at", "-id").filter(created_at__lt=now)[:51]
    plan = explain(keys)
    # then the worker's rows are found by their community and the cursor, inside the index
    scan = "\n".join(_index_scan(plan, "appeal_responsible_idx"))
    assert "Index Cond" in scan and "COALESCE" in scan and "created_at <" in scan, plan
    assert "appeal_seek_created_idx" not in plan
    # and the scope is the same as before: named and not routed, or routed to them
    assert [row["id"] for row in keys] == [routed.pk]


def test_a_workers_rest_list_pages_through_their_appeals_only(client, worker):
    # given the worker's appeals among another community's
    other = CommunityFactory()
    now = timezone.now()
    mine = [AppealFactory(resident=ResidentFactory(community=worker.mine), created_at=now - dt.timedelta(minutes=i))
            for i in range(3)]
    AppealFactory(resident=ResidentFactory(community=other), created_at=now)
    client.force_login(worker)
    # when they page through the REST list two at a time
    seen, url = [], "/api/v1/appeals/?page_size=2"
    while url:
        body = client.get(url).json()
        seen += [row["reference"] for row in body["results"]]
        url = body["next"]
    # then they see their appeals, newest first, each once
    assert seen == [a.reference for a in mine]


def test_a_workers_popup_page_reads_their_residents_popups_by_index(worker):
    # given a popup of the worker's resident after thousands of another community's residents
    template = PopupCaseFactory(resident=ResidentFactory(community=CommunityFactory()))
    _copy(Resident, template.resident_id, {"id_hash": "md5('b' || g)"})
    first = Resident.objects.filter(pk__gt=template.resident_id).order_by("pk").values_list("pk", flat=True).first()
    _copy(PopupCase, template.pk, {"resident_id": f"{first - 1} + g", "state": "'lifted'", "lifted_at": "now()"})
    mine = PopupCaseFactory(resident=ResidentFactory(community=worker.mine))
    # when the list's next page (every state, newest first, before a cursor) is planned
    qs = popup_list(residents=residents_visible_to(worker), filters=PopupListFilters(state="all"))
    ids = qs.filter(pk__lt=mine.pk + 1).values_list("pk", flat=True)[:51]
    plan = explain(ids)
    # then it reads the residents' popups from the index, the cursor an index condition
    scan = "\n".join(_index_scan(plan, "popup_resident_seek_idx"))
    assert "resident_id = ANY" in scan and "id <" in scan, plan
    assert "healthkit_popupcase_pkey" not in plan
    assert list(ids) == [mine.pk]


def test_a_workers_task_list_reads_the_communitys_tasks_by_index(worker):
    # given a task of the worker's community among thousands of another community's
    task = ClearanceTaskFactory(resident=ResidentFactory(community=worker.mine))
    template = ClearanceTaskFactory(resident=ResidentFactory(community=CommunityFactory()))
    _copy(ClearanceTask, template.pk, {"popup_id": "NULL"})
    # when the REST list's next page (by id, the cursor `id > …`) is planned
    page = tasks_visible_to(worker).filter(pk__gt=task.pk - 1).order_by("id").values_list("pk", flat=True)[:51]
    plan = explain(page)
    # then the community and the cursor are conditions on the community's index
    scan = "\n".join(_index_scan(plan, "clearance_community_seek_idx"))
    assert "community_id =" in scan and "id >" in scan, plan
    assert list(page) == [task.pk]
