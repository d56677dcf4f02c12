"""Celery tasks of community clearance: thin, take primary keys, safe to run twice."""

from celery import shared_task

from healthkit.errors import TransientError


@shared_task(bind=True, acks_late=True, autoretry_for=(TransientError,), retry_backoff=True, max_retries=8)
def clearance_open_for_appeal(self, appeal_id: int) -> int | None:
    """Create (or find) the confirmation task for a routed appeal and text the resident a link.

    Idempotent: a rerun finds the open task and sends nothing new. Returns the task id.
    """
    from appeals.clearance import services
    from appeals.models import Appeal

    appeal = Appeal.objects.select_related("resident", "popup", "routed_community", "community").filter(
        pk=appeal_id).first()
    if appeal is None:
        return None
    task = services.clearance_open_for_appeal(appeal=appeal)
    return task.pk if task else None
