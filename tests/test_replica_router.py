"""Read replicas are configuration only: with REPLICA_DATABASE_URL set, reads marked with
`replica_reads()` go to the replica; writes, unmarked reads and reads inside a transaction
stay on the primary."""

import pytest
from django.conf import settings
from django.db import transaction

from communities.models import Resident
from healthkit.dbrouter import ReplicaRouter, read_alias, replica_reads


@pytest.fixture
def with_replica(monkeypatch):
    monkeypatch.setitem(settings.DATABASES, "replica", dict(settings.DATABASES["default"]))
    yield
    settings.DATABASES.pop("replica", None)


def test_without_a_replica_everything_is_primary():
    with replica_reads():
        assert read_alias() == "default" and ReplicaRouter().db_for_read(Resident) == "default"


@pytest.mark.django_db(transaction=True)
def test_marked_reads_go_to_the_replica_outside_transactions(with_replica):
    router = ReplicaRouter()
    assert router.db_for_read(Resident) == "default"  # not marked
    with replica_reads():
        assert router.db_for_read(Resident) == "replica"
        assert router.db_for_write(Resident) == "default"
        with transaction.atomic():  # a read after a write in the same transaction sees it
            assert router.db_for_read(Resident) == "default"
    assert router.allow_migrate("replica", "communities") is False


def test_settings_only_route_when_configured():
    assert ("healthkit.dbrouter.ReplicaRouter" in settings.DATABASE_ROUTERS) == bool(settings.REPLICA_DATABASE_URL)
