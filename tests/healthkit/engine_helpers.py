"""Small helpers shared by the engine tests."""

import datetime as dt

from healthkit import engine
from healthkit.models import PopupCase
from healthkit.selectors import health_code_at


def active_at(resident, at: dt.datetime) -> list[int]:
    """Evaluate the resident at `at` (as the engine would then) and return the active types."""
    engine.evaluate(resident_ids=[resident.pk], at=at)
    return health_code_at(resident, at).popup_types


def cases(resident, popup_type: int) -> list[PopupCase]:
    return list(PopupCase.objects.filter(resident=resident, popup_type=popup_type).order_by("pk"))
