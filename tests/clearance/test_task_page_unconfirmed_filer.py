"""A task from an appeal filed from a phone not on the resident's record warns the worker that
the link went to that phone, so the decision is not taken on an unproven identity."""

import pytest
from django.urls import reverse

from appeals.clearance import services
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("unconfirmed", [True, False])
def test_the_task_page_warns_about_an_unconfirmed_filer(client, unconfirmed):
    appeal = RoutedAppealFactory(filer_unconfirmed=unconfirmed)
    task = services.clearance_open_for_appeal(appeal=appeal)
    client.force_login(WorkerFactory(communities=[appeal.routed_community]))
    page = client.get(reverse("clearance:task", args=[task.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert ('id="filer-unconfirmed"' in page) is unconfirmed
