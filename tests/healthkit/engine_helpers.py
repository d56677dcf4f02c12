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


# Every way the engine raises a popup: the resident's own evaluation, and the sweep with the
# type-4 triggers listed or found by its own join, each with the results hashed or probed.
RAISE_PATHS = {
    "resident": {},
    "sweep, listed, hashed": {"probe": False},
    "sweep, listed, probed": {"probe": True},
    "sweep, own join, hashed": {"probe": False, "join": True},
    "sweep, own join, probed": {"probe": True, "join": True},
}


def evaluate_by(path: str, monkeypatch, resident, at: dt.datetime) -> None:
    """Evaluate at `at` the way RAISE_PATHS[path] names (the sweep evaluates everybody)."""
    how = RAISE_PATHS[path]
    if "probe" in how:
        monkeypatch.setattr(engine, "_type4_by_probe", lambda results, triggers: how["probe"])
        if how.get("join"):
            monkeypatch.setattr(engine, "SWEEP_LISTED_RAISES_AT_MOST", 0)
        engine.evaluate(resident_ids=None, at=at)
    else:
        engine.evaluate(resident_ids=[resident.pk], at=at)
