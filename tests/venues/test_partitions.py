"""The scan table is partitioned by month; partitions are created ahead, rows found in the
default partition move into a new month, and retention drops whole months."""

import datetime as dt

import pytest
from django.db import connection

from tests.factories.venues import VenueFactory, VenueScanFactory, cst
from venues import partitions
from venues.ingest import scans_ingest
from venues.models import VenueScan

pytestmark = pytest.mark.django_db


def _partition_of(scan_id: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM venues_venuescan WHERE id = %s", [scan_id])
        return cursor.fetchone()[0]


def test_new_month_takes_its_rows_out_of_the_default_partition():
    early = VenueScanFactory(scanned_at=cst(2022, 9, 1, 0, 30))  # 1 September in Beijing
    late = VenueScanFactory(scanned_at=cst(2022, 8, 31, 23, 59))
    assert _partition_of(early.pk) == partitions.DEFAULT

    assert partitions.scan_partition_create(dt.date(2022, 9, 15)) is True
    assert partitions.scan_partition_create(dt.date(2022, 9, 1)) is False

    assert _partition_of(early.pk) == "venues_venuescan_202209"
    assert _partition_of(late.pk) == partitions.DEFAULT
    assert VenueScan.objects.count() == 2


def test_ensure_creates_the_months_around_now_once():
    created = partitions.scan_partitions_ensure(at=cst(2022, 9, 10))
    assert created == ["venues_venuescan_202208", "venues_venuescan_202209",
                       "venues_venuescan_202210", "venues_venuescan_202211"]
    assert partitions.scan_partitions_ensure(at=cst(2022, 9, 10)) == []


def test_ingest_is_idempotent_across_partitions_and_retention_drops_months():
    partitions.scan_partitions_ensure(at=cst(2022, 9, 10))
    venue = VenueFactory()
    from tests.factories import ResidentFactory, make_id_number

    number = make_id_number()
    ResidentFactory(id_number=number)
    records = [{"id_number": number, "venue": venue.code, "scanned_at": at}
               for at in ("2022-08-31T23:00:00+08:00", "2022-09-01T08:00:00+08:00")]
    assert scans_ingest(records=records).accepted == 2
    assert scans_ingest(records=records).duplicates == 2

    assert partitions.scan_partitions_drop_before(dt.date(2022, 9, 1)) == ["venues_venuescan_202208"]
    assert list(VenueScan.objects.values_list("scanned_at", flat=True)) == [cst(2022, 9, 1, 8)]


def test_retention_drops_the_months_older_than_the_setting_and_the_old_default_rows(settings):
    settings.RETENTION_VENUE_SCAN_DAYS = 60
    partitions.scan_partitions_ensure(at=cst(2022, 9, 10), months_back=3, months_ahead=0)
    june = VenueScanFactory(scanned_at=cst(2022, 6, 30, 23, 0))
    july = VenueScanFactory(scanned_at=cst(2022, 7, 20, 8, 0))
    august = VenueScanFactory(scanned_at=cst(2022, 8, 2, 8, 0))
    stray_old = VenueScanFactory(scanned_at=cst(2021, 12, 1, 8, 0))  # no month partition: the default
    stray_new = VenueScanFactory(scanned_at=cst(2022, 12, 1, 8, 0))
    assert _partition_of(stray_old.pk) == partitions.DEFAULT

    # 10 September - 60 days = 12 July: June ended before it, July did not.
    dropped = partitions.scan_partitions_retain(at=cst(2022, 9, 10, 12))
    assert dropped == ["venues_venuescan_202206"]
    assert set(VenueScan.objects.values_list("pk", flat=True)) == {july.pk, august.pk, stray_new.pk}
    assert june.pk not in set(VenueScan.objects.values_list("pk", flat=True))

    # Idempotent; a month later July goes too; 0 keeps everything.
    assert partitions.scan_partitions_retain(at=cst(2022, 9, 10, 12)) == []
    assert partitions.scan_partitions_retain(at=cst(2022, 10, 10, 12)) == ["venues_venuescan_202207"]
    settings.RETENTION_VENUE_SCAN_DAYS = 0
    assert partitions.scan_partitions_retain(at=cst(2023, 10, 10, 12)) == []
    assert set(VenueScan.objects.values_list("pk", flat=True)) == {august.pk, stray_new.pk}


def _month_names(*months: tuple[int, int]) -> set[str]:
    return {f"venues_venuescan_{year:04d}{month:02d}" for year, month in months}


# The beat job on several days of a month, city time: the expected partitions follow from the
# pinned day, never from the day the suite runs (month ends and the 1st and 2nd included).
@pytest.mark.parametrize(("when", "days", "expected"), [
    # a day's retention: last month is older than a day from the 2nd on, so it is never made
    (cst(2026, 12, 1, 0, 30), 1, _month_names((2026, 11), (2026, 12), (2027, 1), (2027, 2))),
    (cst(2026, 12, 2, 0, 30), 1, _month_names((2026, 12), (2027, 1), (2027, 2))),
    (cst(2026, 12, 15, 12, 0), 1, _month_names((2026, 12), (2027, 1), (2027, 2))),
    (cst(2026, 12, 31, 23, 59), 1, _month_names((2026, 12), (2027, 1), (2027, 2))),
    (cst(2027, 1, 1, 0, 0), 1, _month_names((2026, 12), (2027, 1), (2027, 2), (2027, 3))),
    # a longer retention keeps last month whatever the day
    (cst(2026, 12, 2, 0, 30), 40, _month_names((2026, 11), (2026, 12), (2027, 1), (2027, 2))),
    (cst(2026, 12, 31, 23, 59), 40, _month_names((2026, 11), (2026, 12), (2027, 1), (2027, 2))),
])
def test_the_beat_job_creates_ahead_and_drops_behind(settings, monkeypatch, when, days, expected):
    from django.utils import timezone

    from venues.tasks import venue_scan_partitions

    settings.RETENTION_VENUE_SCAN_DAYS = days
    monkeypatch.setattr(timezone, "now", lambda: when)
    partitions.scan_partition_create(dt.date(2000, 1, 1))  # long past every retention
    done = venue_scan_partitions()

    assert "venues_venuescan_200001" in done
    names = set(partitions.partition_names())
    assert names == expected | {partitions.DEFAULT}
    assert set(done) == expected | {"venues_venuescan_200001"}  # made (none retention drops), dropped
    assert venue_scan_partitions() == []  # a second run the same day changes nothing
