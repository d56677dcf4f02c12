"""Celery jobs of the dashboard (thin: the service does the work)."""

from celery import shared_task

from appeals.oversight import services


@shared_task(acks_late=True)
def summary_refresh(full: bool = False) -> int | None:
    """Refresh the dashboard's summary tables; a rerun is harmless (it rebuilds the same rows).
    None: another refresh was running (this minute's is skipped)."""
    refresh = services.summary_refresh(full=full)
    return refresh.duration_ms if refresh is not None else None
