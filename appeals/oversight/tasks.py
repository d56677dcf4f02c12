"""Celery jobs of the dashboard (thin: the service does the work)."""

from celery import shared_task

from appeals.oversight import services


@shared_task(acks_late=True)
def summary_refresh() -> int:
    """Rebuild the dashboard's summary tables; a rerun is harmless (it rebuilds again)."""
    return services.summary_refresh().duration_ms
