"""Celery tasks of community clearance: thin, take primary keys, safe to run twice."""

from celery import shared_task


@shared_task(bind=True, acks_late=True, retry_backoff=True, max_retries=8)  # retries: healthkit/taskbase.py
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


@shared_task(bind=True, acks_late=True, retry_backoff=True, max_retries=8)  # retries: healthkit/taskbase.py
def clearance_send_link(self, task_id: int) -> None:
    """Text the first link of a task a sweep opened (idempotent). If every retry fails, the
    beat job `clearance_link_catch_up` sends it."""
    from appeals.clearance import services

    services.clearance_send_first_link(task_id=task_id)


@shared_task(acks_late=True, ignore_result=True)
def clearance_popup_sweep() -> None:
    """Beat: open tasks for popups that need the community (set-based)."""
    from appeals.clearance import services

    services.clearance_popup_sweep()


@shared_task(acks_late=True, ignore_result=True)
def clearance_relief_sweep() -> None:
    """Beat, daily: long-stranded residents wishing to return become priority cases."""
    from appeals.clearance import services

    services.clearance_relief_sweep()


@shared_task(acks_late=True, ignore_result=True)
def clearance_sla_sweep() -> None:
    """Beat: escalate tasks past their SLA."""
    from appeals.clearance import services

    services.clearance_sla_sweep()


@shared_task(acks_late=True, ignore_result=True)
def clearance_measures_sweep() -> None:
    """Beat: lift tasks whose measures are complete; close tasks whose popup went elsewhere."""
    from appeals.clearance import services

    services.clearance_measures_sweep()


@shared_task(acks_late=True, ignore_result=True)
def clearance_link_catch_up() -> int:
    """Beat, every minute: open tasks still without their first link get it (lost publish)."""
    from appeals.clearance import services

    return services.clearance_link_catch_up()
