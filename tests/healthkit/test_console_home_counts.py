"""The console home's open popups per type: a city-wide viewer's figure is one count without a
join to every resident, kept for a minute; a community worker's stays live and scoped.

At 300,000 open popups the join made every console home view 0.7-1.1 s (docs/scale.md, *Every
page at a million rows*)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from communities.models import User
from tests.factories import CommunityFactory, PopupCaseFactory, ResidentFactory, UserFactory

pytestmark = pytest.mark.django_db


def _figures(client) -> tuple[dict[int, int], list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("console-home"))
    assert response.status_code == 200
    rows = {row["popup_type"]: row["n"] for row in response.context["open_by_type"]}
    return rows, [q["sql"] for q in captured.captured_queries if "healthkit_popupcase" in q["sql"]]


def test_city_wide_count_joins_no_residents_and_is_kept_for_a_minute(client):
    PopupCaseFactory(resident=ResidentFactory(), popup_type=3, state="active")
    PopupCaseFactory(resident=ResidentFactory(), popup_type=3, state="active")
    PopupCaseFactory(resident=ResidentFactory(), popup_type=4, state="withdrawn", lifted_at=timezone.now())
    client.force_login(UserFactory(role=User.Role.OPERATOR))

    rows, sqls = _figures(client)
    assert rows == {3: 2}
    assert len(sqls) == 1 and "communities_resident" not in sqls[0]
    PopupCaseFactory(resident=ResidentFactory(), popup_type=3, state="active")
    rows, sqls = _figures(client)
    assert rows == {3: 2} and sqls == []  # the minute's figure, no count


def test_a_community_worker_counts_only_their_communities_live(client):
    mine, other = CommunityFactory(), CommunityFactory()
    PopupCaseFactory(resident=ResidentFactory(community=mine), popup_type=1, state="active")
    PopupCaseFactory(resident=ResidentFactory(community=other), popup_type=1, state="active")
    worker = UserFactory(role=User.Role.COMMUNITY_WORKER)
    worker.communities.add(mine)
    client.force_login(worker)

    assert _figures(client)[0] == {1: 1}
    PopupCaseFactory(resident=ResidentFactory(community=mine), popup_type=2, state="under_review")
    assert _figures(client)[0] == {1: 1, 2: 1}
