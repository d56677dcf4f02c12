"""Periodic jobs of the popup core (merged into Celery beat by healthkit/celery.py)."""

BEAT_SCHEDULE = {
    "sms-deliver-due": {"task": "healthkit.tasks.sms_deliver_due", "schedule": 30.0},
    # Residents told when a popup is lifted or withdrawn, however it happened (healthkit/notify.py).
    "popup-closed-notify": {"task": "healthkit.tasks.popup_closed_notify", "schedule": 60.0},
    # Time-based popup changes (deadlines, quarantine ends, windows, policy boundaries).
    # Evaluations no task took (broker down at commit, worker lost, retries given up).
    "engine-work-due": {"task": "healthkit.tasks.engine_work_due", "schedule": 60.0},
    "engine-sweep": {"task": "healthkit.tasks.engine_sweep", "schedule": 60.0},
    # Outbox retries after backoff, and anything an on-commit kick missed.
    "outbox-dispatch-due": {"task": "healthkit.tasks.outbox_dispatch_due", "schedule": 15.0},
    # Idempotency-Keys of REST POSTs (and the answers kept with them) past IDEMPOTENCY_KEY_HOURS.
    "idempotent-requests-purge": {"task": "healthkit.tasks.idempotent_requests_purge", "schedule": 3600.0},
}
