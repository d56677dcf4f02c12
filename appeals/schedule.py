"""Periodic jobs of the appeals app (merged into Celery beat by healthkit/celery.py)."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "appeals-sla-sweep": {"task": "appeals.tasks.appeal_sla_sweep", "schedule": 60.0},
    "appeals-unanswered-sweep": {"task": "appeals.tasks.appeal_unanswered_sweep", "schedule": 300.0},
    "appeals-evidence-drafts-purge": {"task": "appeals.tasks.evidence_drafts_purge", "schedule": 3600.0},
    # Forget on schedule (appeals/retention.py): once a day, at night Beijing time.
    "retention-forget-due": {"task": "appeals.tasks.retention_forget_due", "schedule": crontab(hour=3, minute=30)},
}
