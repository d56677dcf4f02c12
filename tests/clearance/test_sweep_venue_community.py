"""A venue exposure's popup 3 for a resident with no registered community (registered by scan
ingest or online filing) reaches the worklist of the venue's community, and the task says why."""

import pytest
from django.urls import reverse

from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceTask
from healthkit.models import PopupCase
from tests.factories import CommunityFactory, PopupCaseFactory, ResidentFactory
from tests.factories.clearance import WorkerFactory
from tests.factories.venues import RiskWindowFactory, VenueFactory, VenueScanFactory, cst
from venues.exposure import exposure_run

pytestmark = pytest.mark.django_db
RUN_AT = cst(2022, 9, 2, 9)


def _exposed(*, venue, resident):
    VenueScanFactory(venue=venue, resident=resident, scanned_at=cst(2022, 9, 1, 12))
    exposure_run(window_id=RiskWindowFactory(venue=venue).pk, at=RUN_AT)
    return PopupCase.objects.get(resident=resident, popup_type=3)


def test_exposed_resident_without_community_goes_to_the_venues_community(django_capture_on_commit_callbacks):
    # given a resident registered by scan ingest (no community) exposed at a risk venue
    venue = VenueFactory()
    resident = ResidentFactory(community=None)
    popup = _exposed(venue=venue, resident=resident)

    # when the popup sweep runs
    with django_capture_on_commit_callbacks(execute=True):
        ids = services.clearance_popup_sweep(at=RUN_AT)

    # then a risk-investigation task is open for the venue's community
    task = ClearanceTask.objects.get(pk__in=ids, popup=popup)
    assert task.community == venue.community and task.origin == ClearanceTask.Origin.RISK_LINK
    # and its opening event records why that community
    opened = task.events.get(kind=ClearanceEvent.Kind.OPENED)
    assert opened.data["community_from"] == "venue"
    assert opened.data["venue"] == venue.pk and opened.data["venue_code"] == venue.code
    assert opened.reason
    # and a rerun opens nothing more
    assert services.clearance_popup_sweep(at=RUN_AT) == []


def test_task_page_tells_the_worker_why_the_task_is_theirs(client):
    venue = VenueFactory()
    popup = _exposed(venue=venue, resident=ResidentFactory(community=None))
    (task_id,) = services.clearance_popup_sweep(at=RUN_AT)
    client.force_login(WorkerFactory(communities=[venue.community]))

    response = client.get(reverse("clearance:task", args=[task_id]))

    assert response.status_code == 200
    reason = ClearanceTask.objects.get(pk=task_id).events.get(kind=ClearanceEvent.Kind.OPENED).reason
    assert response.context["community_reason"] == reason
    assert 'id="community-reason"' in response.content.decode()
    assert popup.pk == ClearanceTask.objects.get(pk=task_id).popup_id


def test_a_registered_community_still_wins_over_the_venues():
    venue = VenueFactory()
    home = CommunityFactory()
    popup = _exposed(venue=venue, resident=ResidentFactory(community=home))
    (task_id,) = services.clearance_popup_sweep(at=RUN_AT)
    task = ClearanceTask.objects.get(pk=task_id)
    assert task.popup == popup and task.community == home
    assert "community_from" not in task.events.get(kind=ClearanceEvent.Kind.OPENED).data


def test_no_community_anywhere_opens_no_task():
    # a venue without a community, and a non-venue popup 3 of a resident without one: nobody to
    # route to (no other source names a community), so no task
    venue = VenueFactory(community=None, district=None)
    _exposed(venue=venue, resident=ResidentFactory(community=None))
    PopupCaseFactory(popup_type=3, resident=ResidentFactory(community=None),
                     cause={"rule": "upstream", "venue": "not-a-number"})
    assert services.clearance_popup_sweep(at=RUN_AT) == []
