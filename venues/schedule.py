"""Periodic jobs of the venues app (merged into Celery beat by healthkit/celery.py)."""

BEAT_SCHEDULE = {
    # Risk windows marked due (created, corrected, withdrawn, late scans) whose kick was lost.
    "venues-exposure-due": {"task": "venues.tasks.venue_exposure_due", "schedule": 60.0},
    # Monthly partitions of the scan table exist before the first scan of a month arrives, and
    # months older than RETENTION_VENUE_SCAN_DAYS are dropped.
    "venues-scan-partitions": {"task": "venues.tasks.venue_scan_partitions", "schedule": 6 * 3600.0},
}
