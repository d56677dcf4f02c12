"""`seed_demo` runs from a bare checkout and a
run that stopped half-way is resumed by the next `seed_demo --if-empty`: nothing seeded twice,
nothing missing."""

import io

import pytest
from django.core.management import call_command

from appeals.models import Appeal
from communities.models import PersonalDataAccess, Resident
from venues.models import Venue

pytestmark = pytest.mark.django_db


def test_a_fresh_database_gets_every_app_demo():
    """Reference rows from migrations (districts) do not count as a demo already loaded."""
    out = io.StringIO()
    call_command("seed_demo", "--if-empty", residents=40, stdout=out)
    assert "already present" not in out.getvalue()
    assert PersonalDataAccess.objects.filter(context__startswith="demo:").exists()


def test_a_half_seeded_database_is_seeded_again(monkeypatch):
    import venues.demo

    real_seed = venues.demo.seed

    def crash(**kwargs):
        raise RuntimeError("broker unreachable")

    monkeypatch.setattr(venues.demo, "seed", crash)
    with pytest.raises(RuntimeError):
        call_command("seed_demo", "--if-empty", residents=40, stdout=io.StringIO())
    residents, appeals = Resident.objects.count(), Appeal.objects.count()
    audit = PersonalDataAccess.objects.filter(context__startswith="demo:").count()
    assert residents == 40 and appeals > 0 and audit > 0 and not Venue.objects.exists()

    monkeypatch.setattr(venues.demo, "seed", real_seed)
    out = io.StringIO()
    call_command("seed_demo", "--if-empty", residents=40, stdout=out)
    assert "resuming" in out.getvalue() and "communities: demo data already present" in out.getvalue()
    assert (Resident.objects.count(), Appeal.objects.count()) == (residents, appeals)
    assert Venue.objects.exists()
    assert PersonalDataAccess.objects.filter(context__startswith="demo:").count() == audit

    venues = Venue.objects.count()
    again = io.StringIO()
    call_command("seed_demo", "--if-empty", residents=40, stdout=again)
    assert (Resident.objects.count(), Appeal.objects.count(), Venue.objects.count()) == (residents, appeals, venues)
    assert "appeals: demo data already present" in again.getvalue()
