"""Celery tasks of the venues app: thin, take primary keys, safe to run twice."""

from celery import shared_task


@shared_task(acks_late=True, ignore_result=True)
def venue_exposure_run(window_id: int) -> None:
    """Raise/update/withdraw the popups of one risk window (idempotent)."""
    from venues import exposure

    exposure.exposure_run(window_id=window_id)


@shared_task(acks_late=True, ignore_result=True)
def venue_exposure_due() -> int:
    """Beat: windows marked due whose on-commit kick was lost (or late scans arrived)."""
    from venues import exposure

    return len(exposure.exposure_run_due())


@shared_task(acks_late=True, ignore_result=True)
def venue_scan_partitions() -> list[str]:
    """Beat: monthly scan partitions for last month, this month and the next two; months older
    than the retention dropped. Returns the partitions created and dropped."""
    from venues import partitions

    return partitions.scan_partitions_maintain()
