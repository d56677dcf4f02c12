"""Periodic jobs of community clearance (merged into Celery beat by healthkit/celery.py)."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    # Popups that need the community (type 3, type 1 in the city, upstream attribution).
    "clearance-popup-sweep": {"task": "appeals.clearance.tasks.clearance_popup_sweep", "schedule": 60.0},
    # Tasks whose first link SMS was never issued (lost publish, failed task).
    "clearance-link-catch-up": {"task": "appeals.clearance.tasks.clearance_link_catch_up", "schedule": 60.0},
    "clearance-sla-sweep": {"task": "appeals.clearance.tasks.clearance_sla_sweep", "schedule": 300.0},
    # Lifts after negative results arrive; results come in all day.
    "clearance-measures-sweep": {"task": "appeals.clearance.tasks.clearance_measures_sweep", "schedule": 300.0},
    # Relief for residents stranded outside the city: once a day, early morning Beijing time.
    "clearance-relief-sweep": {"task": "appeals.clearance.tasks.clearance_relief_sweep",
                               "schedule": crontab(hour=6, minute=0)},
}
