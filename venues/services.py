"""Writes of the venues app: the registry and risk windows (the exposure job is venues.exposure,
scan ingest is venues.ingest)."""

import datetime as dt
from collections.abc import Iterable

from django.core.cache import cache
from django.db import transaction
from django.utils.translation import gettext as _

from communities.models import Community, PersonalDataAccess, User
from communities.services import access_log
from healthkit import clock
from healthkit.concurrency import check_seen
from healthkit.errors import ApplicationError, RetryLater
from venues.models import RiskWindow, RiskWindowEvent, Venue

MAX_WINDOW = dt.timedelta(days=31)
# The register is personal data in bulk: per-user hourly ceilings stop enumeration.
REGISTER_PAGES_PER_HOUR = 300
REGISTER_EXPORTS_PER_HOUR = 20


class RegisterRateLimited(RetryLater):
    """Too many register pages or exports this hour (the count starts again on the next hour)."""


def venue_register_access(*, user: User, venue: Venue, start: dt.datetime, end: dt.datetime,
                          export: bool, page: int = 1) -> None:
    """Count and audit one look at a venue's visitor register (call after venue_access).
    Raises RegisterRateLimited over the hourly ceiling (nothing is shown, nothing is logged)."""
    kind, limit = ("export", REGISTER_EXPORTS_PER_HOUR) if export else ("page", REGISTER_PAGES_PER_HOUR)
    now = clock.now().timestamp()
    hour = int(now // 3600)
    key = f"venues:register:{kind}:{user.pk}:{hour}"
    cache.add(key, 0, timeout=3700)
    try:
        current = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3700)
        current = 1
    if current > limit:
        raise RegisterRateLimited(_("Too many look-ups of visitor registers this hour; please try again later."),
                                  extra={"limit": limit}, retry_after=(hour + 1) * 3600 - now)
    access_log(actor=user, resident=None,
               action=PersonalDataAccess.Action.EXPORT if export else PersonalDataAccess.Action.VIEW,
               context=f"venue-register:{venue.pk}",
               reason=f"{start.isoformat()}/{end.isoformat()} " + ("csv" if export else f"p{page}"))


def venue_create(*, name: str, kind: str, address: str = "", community: Community | None,
                 managers: Iterable[User] = ()) -> Venue:
    """Register a venue; its code is generated once and never changes. The district follows
    the community."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError(_("A venue needs a name."))
    if kind not in Venue.Kind.values:
        raise ApplicationError(_("Unknown venue kind."), extra={"kind": kind})
    venue = Venue.objects.create(
        name=name[:120], kind=kind, address=(address or "").strip()[:200], community=community,
        district=community.street.district if community is not None else None,
    )
    managers = list(managers)
    if managers:
        venue_set_managers(venue=venue, managers=managers)
    return venue


def venue_set_managers(*, venue: Venue, managers: Iterable[User]) -> Venue:
    """Only venue-manager accounts may manage a venue (they see its visitor register)."""
    managers = list(managers)
    wrong = [m.pk for m in managers if m.role != User.Role.VENUE_MANAGER]
    if wrong:
        raise ApplicationError(_("Only venue manager accounts can manage a venue."),
                               extra={"users": wrong})
    venue.managers.set(managers)
    return venue


def _check_window(*, starts_at: dt.datetime, ends_at: dt.datetime, risk_level: str, reason: str) -> str:
    if starts_at is None or ends_at is None or starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ApplicationError(_("Give both ends of the window with a time zone."))
    if ends_at <= starts_at:
        raise ApplicationError(_("The window must end after it starts."))
    if ends_at - starts_at > MAX_WINDOW:
        raise ApplicationError(_("A risk window is at most %(days)d days long.") % {"days": MAX_WINDOW.days})
    if risk_level not in RiskWindow.Level.values:
        raise ApplicationError(_("Unknown risk level."), extra={"risk_level": risk_level})
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Give a reason."))
    return reason[:200]


def _window_snapshot(window: RiskWindow) -> dict:
    return {"from": window.starts_at.isoformat(), "to": window.ends_at.isoformat(),
            "risk_level": window.risk_level, "reason": window.reason, "version": window.version,
            "state": window.state}


def _kick(window_id: int) -> None:
    from venues import tasks

    transaction.on_commit(lambda: tasks.venue_exposure_run.delay(window_id), robust=True)


@transaction.atomic
def risk_window_create(*, venue: Venue, starts_at: dt.datetime, ends_at: dt.datetime,
                       risk_level: str, reason: str, actor: User | None,
                       actor_label: str = "", at: dt.datetime | None = None) -> RiskWindow:
    """Mark a venue as a risk point over [starts_at, ends_at). The exposure job runs after
    commit (and from the beat sweep if that kick is lost). Raises ApplicationError."""
    reason = _check_window(starts_at=starts_at, ends_at=ends_at, risk_level=risk_level, reason=reason)
    window = RiskWindow.objects.create(venue=venue, starts_at=starts_at, ends_at=ends_at,
                                       risk_level=risk_level, reason=reason, created_by=actor,
                                       exposure_due=True)
    RiskWindowEvent.objects.create(window=window, kind=RiskWindowEvent.Kind.CREATED, actor=actor,
                                   actor_label=actor_label or (actor.get_username() if actor else ""),
                                   reason=reason, data={"after": _window_snapshot(window)},
                                   at=at or clock.now())
    _kick(window.pk)
    return window


@transaction.atomic
def risk_window_correct(*, window: RiskWindow, starts_at: dt.datetime, ends_at: dt.datetime,
                        risk_level: str, reason: str, actor: User | None, correction: str,
                        actor_label: str = "", at: dt.datetime | None = None,
                        seen: str | None = None) -> RiskWindow:
    """Correct an active window (times, level, reason): a new version; the exposure job then
    raises, updates or withdraws the popups it raised. Raises ApplicationError if the window
    is withdrawn or nothing changes, ChangedSinceSeen if another correction or a withdrawal came
    after the page showed version `seen` (healthkit.concurrency)."""
    reason = _check_window(starts_at=starts_at, ends_at=ends_at, risk_level=risk_level, reason=reason)
    correction = (correction or "").strip()
    if not correction:
        raise ApplicationError(_("Say why the window is corrected."))
    locked = RiskWindow.objects.select_for_update().get(pk=window.pk)
    check_seen(locked, seen)
    if locked.state != RiskWindow.State.ACTIVE:
        raise ApplicationError(_("A withdrawn risk window cannot be corrected."))
    before = _window_snapshot(locked)
    if (locked.starts_at, locked.ends_at, locked.risk_level, locked.reason) == (starts_at, ends_at, risk_level, reason):
        raise ApplicationError(_("Nothing to correct: the window is unchanged."))
    locked.starts_at, locked.ends_at, locked.risk_level, locked.reason = starts_at, ends_at, risk_level, reason
    locked.version += 1
    locked.exposure_due = True
    locked.save(update_fields=["starts_at", "ends_at", "risk_level", "reason", "version",
                               "exposure_due", "updated_at"])
    RiskWindowEvent.objects.create(window=locked, kind=RiskWindowEvent.Kind.CORRECTED, actor=actor,
                                   actor_label=actor_label or (actor.get_username() if actor else ""),
                                   reason=correction[:200],
                                   data={"before": before, "after": _window_snapshot(locked)},
                                   at=at or clock.now())
    _kick(locked.pk)
    return locked


@transaction.atomic
def risk_window_withdraw(*, window: RiskWindow, actor: User | None, reason: str,
                         actor_label: str = "", at: dt.datetime | None = None,
                         seen: str | None = None) -> RiskWindow:
    """Withdraw a window marked in error: the exposure job withdraws the popups it raised that
    nobody has acted on, and flags the others in the trace. Idempotent on a withdrawn window."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Say why the window is withdrawn."))
    at = at or clock.now()
    locked = RiskWindow.objects.select_for_update().get(pk=window.pk)
    check_seen(locked, seen)
    if locked.state == RiskWindow.State.WITHDRAWN:
        return locked
    before = _window_snapshot(locked)
    locked.state = RiskWindow.State.WITHDRAWN
    locked.withdrawn_at = at
    locked.version += 1  # acted-on popups are flagged once per version
    locked.exposure_due = True
    locked.save(update_fields=["state", "withdrawn_at", "version", "exposure_due", "updated_at"])
    RiskWindowEvent.objects.create(window=locked, kind=RiskWindowEvent.Kind.WITHDRAWN, actor=actor,
                                   actor_label=actor_label or (actor.get_username() if actor else ""),
                                   reason=reason[:200],
                                   data={"before": before, "after": _window_snapshot(locked)}, at=at)
    _kick(locked.pk)
    return locked
