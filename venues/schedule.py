"""Periodic jobs of the venues app (merged into Celery beat by healthkit/celery.py)."""

BEAT_SCHEDULE = {
    # Risk windows marked due (created, corrected, withdrawn, late scans) whose kick was lost.
    "venues-exposure-due": {"task": "venues.tasks.venue_exposure_due", "schedule": 60.0},
}
