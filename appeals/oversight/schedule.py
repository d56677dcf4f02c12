"""Periodic jobs of the dashboard (merged into Celery beat by healthkit/celery.py)."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    # The dashboard's figures are at most this old (the page says "as of").
    "oversight-summary-refresh": {"task": "appeals.oversight.tasks.summary_refresh", "schedule": 60.0,
                                  # a run still queued after a minute is dropped: the next one is due
                                  "options": {"expires": 60}},
    # History is rewritten a few days back each minute; once a night, all of it.
    "oversight-summary-rebuild": {"task": "appeals.oversight.tasks.summary_refresh", "kwargs": {"full": True},
                                  "schedule": crontab(hour=3, minute=30)},
}
