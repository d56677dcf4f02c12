"""Periodic jobs of the dashboard (merged into Celery beat by healthkit/celery.py)."""

BEAT_SCHEDULE = {
    # The dashboard's figures are at most this old (the page says "as of").
    "oversight-summary-refresh": {"task": "appeals.oversight.tasks.summary_refresh", "schedule": 60.0},
}
