"""A delete page answers from the protecting keys' indexes (healthkit.admin_site): where rows
protect the object (a community's residents, appeals, tasks), the page names them with a
bounded count and offers no delete, without Django's collector reading every related row
first (a community's delete page took 3.1-3.6 s at a million residents)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from communities.models import Community
from tests.factories import CommunityFactory, ResidentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(role="administrator", is_staff=True, is_superuser=True))
    return client


def test_a_community_with_residents_names_them_and_is_not_deleted(admin_client):
    # given a community where residents live
    community = CommunityFactory()
    for _i in range(3):
        ResidentFactory(community=community)
    url = reverse("admin:communities_community_delete", args=[community.pk])
    # when its delete page is opened
    with CaptureQueriesContext(connection) as captured:
        page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    # then it names what protects it, counted, and reads no resident row to say so
    assert page.status_code == 200
    assert "Residents: 3" in page.content.decode()
    residents = [q["sql"] for q in captured.captured_queries if '"communities_resident"' in q["sql"]]
    assert residents and all("LIMIT" in sql and "COUNT(" in sql.upper() for sql in residents), residents
    # and confirming deletes nothing
    admin_client.post(url, {"post": "yes"})
    assert Community.objects.filter(pk=community.pk).exists()


def test_a_community_nothing_protects_is_deleted(admin_client):
    community = CommunityFactory()
    url = reverse("admin:communities_community_delete", args=[community.pk])
    page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert "Are you sure" in page.content.decode()
    admin_client.post(url, {"post": "yes"})
    assert not Community.objects.filter(pk=community.pk).exists()


def _protecting_relations():
    """(model, relation) for every foreign key declared on_delete=PROTECT that points at a model
    the admin can delete: what a delete page counts (healthkit.admin_site.protected_references)."""
    from django.contrib import admin
    from django.test import RequestFactory

    from communities.models import User
    from healthkit.admin_site import protecting_relations

    request = RequestFactory().get("/admin/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    for model, model_admin in admin.site._registry.items():
        if model_admin.has_delete_permission(request):  # read-only admins have no delete page
            for relation in protecting_relations(model):
                yield model, relation


@pytest.mark.parametrize("model, relation", list(_protecting_relations()),
                         ids=lambda x: getattr(x, "__name__", None) or f"{x.related_model.__name__}.{x.field.name}")
def test_every_protecting_key_a_delete_page_counts_is_read_through_an_index(model, relation):
    # given the bounded count a delete page runs for one protecting key (as protected_references does)
    from healthkit.admin_site import PROTECTED_COUNT_CAP
    from tests.plans import explain

    rows = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": [1]})
    # then PostgreSQL can answer it from an index: at a million rows a sequential scan read every
    # row to say "nothing protects this" (a popup policy's delete page, before popup_policy_idx)
    plan = explain(rows.order_by()[: PROTECTED_COUNT_CAP + 1])
    assert "Seq Scan" not in plan, plan


def test_a_policy_popups_were_raised_under_names_them_and_is_not_deleted(admin_client):
    # given a popup policy two popups were raised under (a key with no reverse name on the policy)
    from healthkit.models import PopupCase, PopupPolicy
    from tests.factories import PopupCaseFactory

    policy = PopupPolicy.objects.filter(popup_type=3).order_by("effective_from").first()  # loaded by a migration
    PopupCaseFactory(policy=policy)
    PopupCaseFactory(policy=policy)
    url = reverse("admin:healthkit_popuppolicy_delete", args=[policy.pk])
    # when its delete page is opened, then it names them, counted, and offers no delete
    with CaptureQueriesContext(connection) as captured:
        page = admin_client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert "Popup cases: 2" in page.content.decode()
    popups = [q["sql"] for q in captured.captured_queries if '"healthkit_popupcase"' in q["sql"]]
    assert popups and all("LIMIT" in sql and "COUNT(" in sql.upper() for sql in popups), popups
    admin_client.post(url, {"post": "yes"})
    assert PopupPolicy.objects.filter(pk=policy.pk).exists() and PopupCase.objects.count() == 2
