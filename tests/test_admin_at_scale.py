"""Every registered admin changelist costs the same at any table size (healthkit.admin_site).

Walks admin.site's registry (the project's admins and third-party ones alike) on the demo city:

- the queries of a changelist do not grow with the rows on its page (one row against three: a
  foreign key column read row by row, or a __str__ that reads further, adds queries per row);
- no statement counts or scans the whole table: the count is LIMITed, a page past the last
  offered (?p=999) shows the last one without an OFFSET past the cap, and the date hierarchy
  lists its periods from a MIN and a MAX, never SELECT DISTINCT over the rows;
- on a big table only indexed columns sort, whatever ?o= asks.

With 1 M rows these took seconds a page (docs/scale.md, *Every page at a million rows*).
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from communities.models import User
from healthkit import admin_site


@pytest.fixture
def administrator(db):
    from appeals.models import Appeal

    call_command("seed_demo", residents=60, stdout=open("/dev/null", "w"))  # noqa: SIM115
    # Every optional key of a listed row filled, so a column read row by row shows in the count.
    Appeal.objects.update(assigned_to=User.objects.get(username="operator1"))
    return User.objects.create_superuser("root", "root@example.invalid", "pw-1234-5678", role="administrator")


def changelists():
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        yield model, model_admin, reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")


def queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return [q["sql"] for q in captured.captured_queries]


def test_every_admin_is_bounded():
    unbounded = [type(a).__name__ for a in admin.site._registry.values()
                 if not isinstance(a, admin_site.BoundedListMixin)]
    assert not unbounded


@pytest.mark.django_db
def test_changelist_queries_do_not_grow_with_the_rows_on_the_page(client, administrator, monkeypatch):
    client.force_login(administrator)
    checked, grew = [], []
    for model, model_admin, url in changelists():
        if model._default_manager.count() < 3:
            continue
        client.get(url)  # warm-up: caches (the table's row estimate, content types)
        monkeypatch.setattr(model_admin, "list_per_page", 1)
        one = queries(client, url)
        monkeypatch.setattr(model_admin, "list_per_page", 3)
        three = queries(client, url)
        checked.append(model._meta.label)
        # After the count, a query for one row by its key is an object read for one row of the page.
        counted = next(i for i, sql in enumerate(three) if "COUNT(" in sql.upper())
        by_key = [sql for sql in three[counted:] if re.search(r'WHERE \("?\w+"?\."id" = \d+\)? LIMIT 21$', sql)]
        if len(three) != len(one) or by_key:
            grew.append((model._meta.label, len(one), len(three), (by_key or three)[-1][-200:]))
    assert not grew, grew
    assert len(checked) >= 20, checked


@pytest.mark.django_db
def test_no_changelist_counts_or_pages_the_whole_table(client, administrator, monkeypatch):
    """A cap of 5 rows stands for the 10,000 of a city's tables."""
    client.force_login(administrator)
    seen_capped = 0
    for model, model_admin, url in changelists():
        monkeypatch.setattr(model_admin, "list_count_cap", 5)
        monkeypatch.setattr(model_admin, "list_per_page", 2)
        for suffix in ("", "?p=999"):
            sqls = queries(client, url + suffix)
            table = model._meta.db_table
            for sql in sqls:
                if f'FROM "{table}"' not in sql:
                    continue
                assert "SELECT DISTINCT DATE_TRUNC" not in sql.upper(), (url, sql)
                if "COUNT(" in sql.upper():
                    assert re.search(r"LIMIT \d+\) subquery", sql), (url + suffix, sql)
                offset = re.search(r"OFFSET (\d+)", sql)
                assert not offset or int(offset.group(1)) < 5, (url + suffix, sql)
        if model._default_manager.count() > 5:
            response = client.get(url + "?p=999", HTTP_ACCEPT_LANGUAGE="en")  # the wording checked below
            cl = response.context["cl"]
            assert cl.paginator.capped and cl.page_num == cl.paginator.num_pages == 3, url
            assert "only the first 5" in response.content.decode(), url
            seen_capped += 1
    assert seen_capped >= 10


@pytest.mark.django_db
def test_on_a_big_table_only_indexed_columns_sort(client, administrator, monkeypatch):
    from healthkit.models import PopupCase

    monkeypatch.setattr(admin_site, "BIG_TABLE_ROWS", 0)  # every table counts as big
    client.force_login(administrator)
    for model, model_admin, url in changelists():
        indexed = {name for name in admin_site.indexed_fields(model)
                   if admin_site._sorts_in_index_order(model._meta.get_field(name))} | {"pk", model._meta.pk.name}
        default = {str(o).lstrip("-") for o in client.get(url).context["cl"].queryset.query.order_by}
        for i in range(len(model_admin.list_display) + 1):
            ordering = [str(o).lstrip("-") for o in client.get(f"{url}?o=-{i}").context["cl"].queryset.query.order_by]
            # A column sort asked for adds indexed columns only to the list's own ordering.
            assert all(o in indexed or o in default for o in ordering), (url, i, ordering)
    # The popup list sorts by the time raised (popup_raised_idx), not by its state (appeals:
    # appeal_queue_idx leads with the status, but the closed ones sort by key after it).
    url = reverse("admin:healthkit_popupcase_changelist")
    columns = client.get(url).context["cl"].list_display  # ?o= counts from 0 in this list
    cl = client.get(url, {"o": f"-{columns.index('raised_at')}"}).context["cl"]
    assert [str(o) for o in cl.queryset.query.order_by][0] == "-raised_at"
    cl = client.get(url, {"o": str(columns.index("state"))}).context["cl"]
    assert "state" not in [str(o).lstrip("-") for o in cl.queryset.query.order_by]
    url = reverse("admin:appeals_appeal_changelist")
    columns = client.get(url).context["cl"].list_display
    cl = client.get(url, {"o": str(columns.index("status"))}).context["cl"]
    assert "status" not in [str(o).lstrip("-") for o in cl.queryset.query.order_by]
    assert PopupCase.objects.exists()


@pytest.mark.django_db
def test_date_hierarchy_offers_every_period_between_the_first_and_the_last(client, administrator):
    import datetime as dt

    from django.utils import timezone

    from healthkit.models import PopupCase
    from healthkit.templatetags.admin_bounds import _RangeDates

    tz = timezone.get_current_timezone()
    first, last = PopupCase.objects.order_by("pk").first().pk, PopupCase.objects.order_by("pk").last().pk
    PopupCase.objects.filter(pk=first).update(raised_at=dt.datetime(2025, 11, 30, 20, tzinfo=tz))
    PopupCase.objects.filter(pk=last).update(raised_at=dt.datetime(2026, 2, 1, 8, tzinfo=tz))
    periods = _RangeDates(PopupCase.objects.filter(pk__in=[first, last]))
    assert periods.datetimes("raised_at", "year") == [dt.date(2025, 1, 1), dt.date(2026, 1, 1)]
    assert periods.datetimes("raised_at", "month") == [dt.date(2025, 11, 1), dt.date(2025, 12, 1),
                                                       dt.date(2026, 1, 1), dt.date(2026, 2, 1)]
    in_december = _RangeDates(PopupCase.objects.filter(pk__in=[first, last], raised_at__year=2025, raised_at__month=11))
    assert in_december.datetimes("raised_at", "day")[-1] == dt.date(2025, 11, 30)

    client.force_login(administrator)
    body = client.get(reverse("admin:healthkit_popupcase_changelist")).content.decode()
    assert "?raised_at__year=2025" in body and "?raised_at__year=2026" in body
    body = client.get(reverse("admin:healthkit_popupcase_changelist"), {"raised_at__year": 2025}).content.decode()
    assert "raised_at__month=11" in body and "raised_at__month=10" not in body


@pytest.mark.django_db
def test_a_change_form_reads_its_choices_in_one_query_whatever_their_number(client, administrator):
    """A worker's community picker lists every community of the city with its street and district."""
    from communities.models import Community, Street

    client.force_login(administrator)
    worker = User.objects.get(username="worker1")
    url = reverse("admin:communities_user_change", args=[worker.pk])
    client.get(url)  # warm-up
    before = len(queries(client, url))
    street = Street.objects.order_by("pk").first()
    Community.objects.bulk_create(Community(street=street, code=f"T{n:08d}", name=f"测试社区{n}") for n in range(5))
    assert len(queries(client, url)) == before


@pytest.mark.django_db
def test_a_big_table_lists_in_index_order_and_offers_no_facets(client, administrator, monkeypatch):
    from healthkit.models import TestResult

    monkeypatch.setattr(admin_site, "BIG_TABLE_ROWS", 0)
    client.force_login(administrator)
    # Results are kept by sample time (Meta.ordering) but no index leads with it: newest by key.
    response = client.get(reverse("admin:healthkit_testresult_changelist"), {"_facets": "True"})
    assert set(response.context["cl"].queryset.query.order_by) == {"-pk"}
    assert response.context["cl"].add_facets is False and response.context["cl"].is_facets_optional is False
    # The access audit's time has its own index: its order stays.
    cl = client.get(reverse("admin:communities_personaldataaccess_changelist")).context["cl"]
    assert [str(o) for o in cl.queryset.query.order_by][0] == "-at"
    assert TestResult.objects.exists()
