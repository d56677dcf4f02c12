"""Celery tasks of the appeals app: thin, re-runnable, no personal data in arguments."""

from celery import shared_task

from appeals import services


@shared_task(acks_late=True)
def appeal_sla_sweep() -> int:
    """Mark open appeals past their SLA as breached and escalated (set-based; a rerun is a no-op)."""
    return services.appeal_sla_sweep()


@shared_task(acks_late=True)
def appeal_unanswered_sweep() -> int:
    """Send appeals whose evidence link ran out unanswered back to whoever had them (bounded per run)."""
    return services.appeal_unanswered_sweep()


@shared_task(acks_late=True)
def evidence_drafts_purge() -> int:
    """Remove screenshots of forms abandoned for two days (bounded batch per run)."""
    return services.evidence_drafts_purge()


@shared_task(acks_late=True)
def retention_forget_due() -> dict[str, int]:
    """Anonymise personal data past its retention period (set-based; a rerun changes nothing)."""
    from appeals import retention

    return retention.retention_forget_due()
