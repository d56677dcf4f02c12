"""Periodic jobs of the appeals app (merged into Celery beat by healthkit/celery.py)."""

BEAT_SCHEDULE = {
    "appeals-sla-sweep": {"task": "appeals.tasks.appeal_sla_sweep", "schedule": 60.0},
    "appeals-evidence-drafts-purge": {"task": "appeals.tasks.evidence_drafts_purge", "schedule": 3600.0},
}
