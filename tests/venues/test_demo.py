"""The demo seed: venues, scans, the venue1 manager's venues and one risk window with popups."""

import io
import random

import pytest

from healthkit.models import PopupCase
from tests.factories import CommunityFactory, ResidentFactory, UserFactory
from venues import demo
from venues.models import RiskWindow, Venue, VenueScan

pytestmark = pytest.mark.django_db


def test_demo_seed_is_believable_and_raises_popups(monkeypatch):
    monkeypatch.setattr(demo, "N_VENUES", 40)
    monkeypatch.setattr(demo, "N_SCANS", 3000)
    communities = [CommunityFactory() for _ in range(3)]
    for i in range(60):
        ResidentFactory(community=communities[i % 3])
    manager = UserFactory(username="venue1", role="venue_manager")
    UserFactory(username="supervisor1", role="supervisor")

    out = io.StringIO()
    demo.seed(rng=random.Random(1), stdout=out)

    assert Venue.objects.count() == 40
    assert manager.managed_venues.count() == 6
    assert VenueScan.objects.count() > 2500
    window = RiskWindow.objects.get()
    assert window.venue in manager.managed_venues.all()
    assert PopupCase.objects.filter(dedupe_key=f"venue-risk:{window.pk}").count() > 0
    assert "venues:" in out.getvalue()
