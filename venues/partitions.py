"""Monthly range partitions of venues_venuescan (by scanned_at).

At tens of millions of scans a day the table is only workable partitioned: each month's
indexes stay small, and retention is dropping a month (`scan_partitions_drop_before`) instead
of deleting billions of rows. Rows outside every month partition land in
`venues_venuescan_default`; `scan_partitions_ensure` creates the months around now (beat, daily)
and moves any such rows of a new month out of the default partition first; `scan_partitions_retain`
(the same beat job) drops the months older than RETENTION_VENUE_SCAN_DAYS.
"""

import datetime as dt
import re

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from healthkit import clock

PARENT = "venues_venuescan"
DEFAULT = "venues_venuescan_default"
_NAME = re.compile(r"^venues_venuescan_(\d{4})(\d{2})$")


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _bound(day: dt.date) -> dt.datetime:
    # Months in city time: a scan at 00:30 on the 1st (Beijing) belongs to that month.
    return dt.datetime.combine(day, dt.time(), tzinfo=timezone.get_default_timezone())


def _lock_partitions() -> None:
    """Serialise partition changes until the transaction ends: two runners (two beats, a
    redelivered message, the demo) both seeing a month missing both ran CREATE TABLE, and the
    second failed with a duplicate-key error on PostgreSQL's catalogue (pg_type), or DROP TABLE
    on a month the first had dropped. The caller checks again under the lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{PARENT}-partitions"])


def partition_names() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s ORDER BY c.relname", [PARENT])
        return [row[0] for row in cursor.fetchall()]


def scan_partition_create(month: dt.date) -> bool:
    """Create the partition for the month containing `month` if missing (moving its rows out of
    the default partition). Returns whether it was created. Locks the default partition briefly."""
    start = _month_start(month)
    end = _next_month(start)
    name = f"{PARENT}_{start:%Y%m}"
    if name in partition_names():
        return False
    lower, upper = _bound(start), _bound(end)
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_partitions()
        if name in partition_names():  # another runner made it while this one waited
            return False
        # Names are built from dates only; bounds go through parameters where SQL allows it.
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT} WHERE scanned_at >= %s AND scanned_at < %s RETURNING *) "  # noqa: S608
            f"INSERT INTO {name} SELECT * FROM moved", [lower, upper])
        cursor.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} "
                       f"FOR VALUES FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')")
    return True


def scan_partitions_ensure(*, at: dt.datetime | None = None, months_back: int = 1, months_ahead: int = 2,
                           after: dt.date | None = None) -> list[str]:
    """Make sure the months around `at` have partitions (idempotent). Returns those created.
    `after`: months that end on or before this day are not created (retention would drop them)."""
    month = _month_start(timezone.localdate(at or clock.now()))
    for _ in range(months_back):
        month = _month_start(month - dt.timedelta(days=1))
    created = []
    for _ in range(months_back + 1 + months_ahead):
        if (after is None or _next_month(month) > after) and scan_partition_create(month):
            created.append(f"{PARENT}_{month:%Y%m}")
        month = _next_month(month)
    return created


def scan_partitions_drop_before(cutoff: dt.date) -> list[str]:
    """Retention: drop whole months that end on or before `cutoff` (never the default)."""
    dropped = []
    with transaction.atomic():
        _lock_partitions()
        for name in partition_names():
            match = _NAME.match(name)
            if match and _next_month(dt.date(int(match[1]), int(match[2]), 1)) <= cutoff:
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP TABLE {name}")
                dropped.append(name)
    return dropped


def retention_cutoff(at: dt.datetime | None = None, days: int | None = None) -> dt.date | None:
    """The day scans are kept after (RETENTION_VENUE_SCAN_DAYS before `at`, city time); None:
    kept for ever."""
    days = settings.RETENTION_VENUE_SCAN_DAYS if days is None else days
    return timezone.localdate(at or clock.now()) - dt.timedelta(days=days) if days > 0 else None


def scan_partitions_maintain(*, at: dt.datetime | None = None) -> list[str]:
    """The daily job: last month, this month and the next two have partitions, except a month
    retention would drop at once (on the 2nd of a month with a day's retention, last month); the
    months older than retention are dropped. One instant for both steps, so a run across
    midnight cannot create a month and drop it. Returns the partitions created and dropped."""
    at = at or clock.now()
    return scan_partitions_ensure(at=at, after=retention_cutoff(at)) + scan_partitions_retain(at=at)


def scan_partitions_retain(*, at: dt.datetime | None = None, days: int | None = None) -> list[str]:
    """Retention of where people went: drop every month that ended `days` (default
    RETENTION_VENUE_SCAN_DAYS) or more before `at`, and delete the default partition's rows
    older than that. Scans are kept at least `days` days and at most a month longer; 0 keeps them
    for ever. Idempotent."""
    cutoff = retention_cutoff(at, days)
    if cutoff is None:
        return []
    with transaction.atomic():
        dropped = scan_partitions_drop_before(cutoff)
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {DEFAULT} WHERE scanned_at < %s", [_bound(cutoff)])  # noqa: S608
    return dropped
