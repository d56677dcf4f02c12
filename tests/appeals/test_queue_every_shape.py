"""The operator queue and the ticket page render every legal shape of an appeal: no community at
all (online "let the operator decide", phone entry), a filer whose phone is not on record, each
channel, stranded, folded repeats, routed with and without a confirmed community, merged."""

import io
import random

import pytest
from django.template.loader import render_to_string
from django.urls import reverse

from appeals import demo, selectors
from appeals.models import Appeal
from appeals.views_console import queue_rows_html
from communities.models import User
from tests.factories import PopupCaseFactory, UserFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db

SHAPES = {
    "no community": {"community": None, "routed_community": None},
    "phone entry, no community": {"channel": "phone", "community": None, "routed_community": None},
    "unconfirmed filer": {"filer_unconfirmed": True, "community": None, "popup": None},
    "open311": {"channel": "open311"},
    "stranded": {"category": "stranded", "currently_outside_city": True, "wishes_to_return": True},
    "folded": {"repeat_count": 4},
    "routed, no confirmed community": {"status": "routed", "community": None},
}


def shapes_in(appeals) -> set[str]:
    """Which of the shapes the demo promises these appeals show."""
    found = set()
    for a in appeals:
        found |= {a.channel}
        if a.community_id is None and a.routed_community_id is None:
            found.add(f"{a.channel} without community")
        if a.filer_unconfirmed:
            found.add("unconfirmed filer")
        if a.category == "stranded":
            found.add("stranded")
        if a.repeat_count:
            found.add("folded")
        if a.merged_into_id:
            found.add("merged")
        if a.status == "routed":
            found.add("routed" if a.community_id else "routed without confirmed community")
    return found


def test_rows_render_a_row_for_every_shape(operator):
    appeals = []
    for _name, fields in SHAPES.items():
        if fields.get("status") == "routed":
            fields = {**fields, "routed_community": None}
        appeals.append(AppealFactory(**fields))
    merged_into = AppealFactory()
    appeals.append(AppealFactory(resident=merged_into.resident, status="closed", outcome="merged",
                                 merged_into=merged_into))
    rows = selectors.queue_rows(Appeal.objects.filter(pk__in=[a.pk for a in appeals])
                                .values(*selectors.QUEUE_ROW_VALUES))
    html = render_to_string("appeals/console/_rows.html", {"rows_html": queue_rows_html(rows)})
    for appeal in appeals:
        assert appeal.reference in html
    # The community column falls back to "—" when neither the confirmed nor the routed one is known.
    assert html.count("<td>—</td>") >= 3


def test_demo_carries_every_shape_and_the_queue_renders_each(client):
    operator = UserFactory(username="operator1", role=User.Role.OPERATOR)
    for _ in range(40):
        PopupCaseFactory()
    demo.seed(rng=random.Random(3), stdout=io.StringIO())
    appeals = list(Appeal.objects.all())
    assert shapes_in(appeals) >= {
        "online", "phone", "open311", "online without community", "phone without community", "unconfirmed filer",
        "stranded", "folded", "merged", "routed", "routed without confirmed community"}
    merged = Appeal.objects.filter(merged_into__isnull=False).select_related("merged_into")
    assert all(m.status == "closed" and m.outcome == "merged" and m.resident_id == m.merged_into.resident_id
               for m in merged)
    client.force_login(operator)
    page = client.get(reverse("appeals:queue"), {"queue": "all", "per_page": 500})
    assert page.status_code == 200
    for appeal in appeals:
        response = client.get(reverse("appeals:queue"), {"queue": "all", "reference": appeal.reference})
        assert response.status_code == 200 and appeal.reference in response.content.decode()
        ticket = client.get(reverse("appeals:ticket", args=[appeal.pk]))
        assert ticket.status_code == 200 and appeal.reference in ticket.content.decode()
