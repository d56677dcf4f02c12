"""Simulator event types of the venues app (registered in VenuesConfig.ready()).

    {"at": ..., "type": "venue_scan", "venue": "V12345678X", "venue_name": "某某餐厅"}
    {"at": ..., "type": "venue_risk", "venue": "V12345678X", "from": ..., "to": ...,
     "level": "high", "reason": "...", "action": "mark" | "correct" | "withdraw"}

A venue code unknown to the (throwaway) replay database is registered there on first use, so a
scenario is self-contained. Both handlers go through the production services (scan ingest, risk
window services) and then run the exposure job for due windows at the event's instant, which is
what Celery does after commit in production: the same inputs give the same popups.
"""

import datetime as dt

from django.utils.translation import gettext as _

from healthkit.scenario import ScenarioError, require
from venues import exposure, ingest, services
from venues.models import RiskWindow, Venue


def _venue(event: dict) -> Venue:
    (code,) = require(event, "venue")
    code = str(code).strip().upper()
    venue = Venue.objects.filter(code=code).first()
    if venue is None:
        venue = Venue.objects.create(code=code, name=str(event.get("venue_name") or code)[:120],
                                     kind=Venue.Kind.OTHER)
    return venue


def _instant(event: dict, name: str) -> dt.datetime:
    value = event.get(name)
    try:
        instant = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise ScenarioError(_("%(field)s must be an ISO 8601 date-time with a UTC offset") % {"field": name})
    return instant


def venue_scan(*, ctx, event, index):
    venue = _venue(event)
    result = ingest.scans_ingest(records=[{"venue": venue.code, "scanned_at": ctx.at.isoformat()}],
                                 resident=ctx.resident)
    if result.rejected:
        errors = result.rejected[0]["errors"]
        raise ScenarioError("; ".join(f"{k}: {v}" for k, v in errors.items()))
    exposure.exposure_run_due(at=ctx.at)


def venue_risk(*, ctx, event, index):
    venue = _venue(event)
    action = event.get("action", "mark")
    current = RiskWindow.objects.filter(venue=venue, state=RiskWindow.State.ACTIVE).order_by("-pk").first()
    if action == "mark":
        services.risk_window_create(
            venue=venue, starts_at=_instant(event, "from"), ends_at=_instant(event, "to"),
            risk_level=event.get("level", RiskWindow.Level.MEDIUM),
            reason=str(event.get("reason") or "scenario"), actor=None, actor_label="scenario", at=ctx.at)
    elif action in ("correct", "withdraw"):
        if current is None:
            raise ScenarioError(_("no active risk window at this venue to %(action)s") % {"action": action})
        if action == "correct":
            services.risk_window_correct(
                window=current, starts_at=_instant(event, "from"), ends_at=_instant(event, "to"),
                risk_level=event.get("level", current.risk_level),
                reason=str(event.get("reason") or current.reason),
                correction=str(event.get("correction") or "scenario correction"),
                actor=None, actor_label="scenario", at=ctx.at)
        else:
            services.risk_window_withdraw(window=current, actor=None, actor_label="scenario",
                                          reason=str(event.get("reason") or "scenario"), at=ctx.at)
    else:
        raise ScenarioError(_('action must be "mark", "correct" or "withdraw"'))
    exposure.exposure_run_due(at=ctx.at)


def register_venue_events() -> None:
    from healthkit.simulator import register_event

    register_event("venue_scan", venue_scan)
    register_event("venue_risk", venue_risk)
