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
