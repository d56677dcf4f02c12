"""Reads of the popup core."""

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from communities.models import Resident
from healthkit import clock
from healthkit.models import HealthStatusOrder, PopupCase, PopupPolicy, TestResult


def policy_in_force(popup_type: int, at: dt.datetime | None = None) -> PopupPolicy | None:
    """The policy version for `popup_type` in force at `at` (None if the type did not exist)."""
    at = at or clock.now()
    return (
        PopupPolicy.objects.filter(popup_type=popup_type, effective_from__lte=at)
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gt=at))
        .order_by("-effective_from")
        .first()
    )


def popups_active_at(resident: Resident, at: dt.datetime | None = None) -> QuerySet[PopupCase]:
    """Cases blocking the resident at `at`: raised by then and not lifted or withdrawn by then."""
    at = at or clock.now()
    return PopupCase.objects.filter(resident=resident, raised_at__lte=at).filter(
        Q(lifted_at__isnull=True) | Q(lifted_at__gt=at)
    )


@dataclass(frozen=True)
class HealthCode:
    color: str  # green | yellow | red
    popups: list[PopupCase] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def popup_types(self) -> list[int]:
        return sorted({p.popup_type for p in self.popups})


def health_code_at(resident: Resident, at: dt.datetime | None = None) -> HealthCode:
    """Colour plus active popups. Red: a red order in force or the latest result on record is
    positive; yellow: a yellow order in force; green otherwise (popups show over the colour)."""
    at = at or clock.now()
    reasons: list[str] = []
    orders = set(
        HealthStatusOrder.objects.filter(resident=resident, starts_at__lte=at)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at))
        .values_list("status", flat=True)
    )
    latest = (
        TestResult.objects.filter(resident=resident, received_at__lte=at)
        .order_by("-sampled_at", "-received_at")
        .values_list("result", flat=True)
        .first()
    )
    color = "green"
    if HealthStatusOrder.Status.RED in orders:
        color = "red"
        reasons.append("status_order:red")
    if latest == TestResult.Outcome.POSITIVE:
        color = "red"
        reasons.append("positive_result")
    if color == "green" and HealthStatusOrder.Status.YELLOW in orders:
        color = "yellow"
        reasons.append("status_order:yellow")
    popups = list(popups_active_at(resident, at).order_by("popup_type", "raised_at"))
    return HealthCode(color=color, popups=popups, reasons=reasons)


def popup_history(case: PopupCase) -> QuerySet:
    return case.events.select_related("actor").order_by("at", "id")
