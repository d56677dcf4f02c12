"""Reads of the venues app: role scoping, the visitor register, risk windows."""

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from communities.models import User
from healthkit.errors import ApplicationError
from healthkit.permissions import has_role
from venues.models import RiskWindow, Venue, VenueScan

SUPERVISING = (User.Role.SUPERVISOR, User.Role.ADMINISTRATOR)
REGISTER_MAX_RANGE = dt.timedelta(days=31)


def can_manage_windows(user: object) -> bool:
    return has_role(user, SUPERVISING)


def venues_visible_to(user: User) -> QuerySet[Venue]:
    """Supervisors and administrators see every venue; a venue manager only the venues they
    manage; nobody else any."""
    if has_role(user, SUPERVISING):
        return Venue.objects.all()
    if has_role(user, (User.Role.VENUE_MANAGER,)) and not user.is_superuser:
        return Venue.objects.filter(managers=user)
    return Venue.objects.none()


def venue_access(*, user: User, venue_id: int) -> Venue:
    """A venue the user may see (and whose register they may read), or PermissionDenied."""
    venue = venues_visible_to(user).select_related("community", "district").filter(pk=venue_id).first()
    if venue is None:
        raise PermissionDenied
    return venue


@dataclass(frozen=True)
class RegisterRange:
    start: dt.datetime
    end: dt.datetime


def register_range(start: dt.datetime | None, end: dt.datetime | None) -> RegisterRange:
    """Validate a register time range [start, end): both ends, ordered, at most 31 days."""
    if start is None or end is None:
        raise ApplicationError(_("Give a start and an end."))
    if end <= start:
        raise ApplicationError(_("The end must come after the start."))
    if end - start > REGISTER_MAX_RANGE:
        raise ApplicationError(_("At most %(days)d days at a time.") % {"days": REGISTER_MAX_RANGE.days})
    return RegisterRange(start=start, end=end)


def venue_visits(*, venue: Venue, period: RegisterRange) -> QuerySet[VenueScan]:
    """The visitor register (到访人信息登记簿) of one venue over [start, end), newest first; rows
    carry only masked personal data (`resident__name` is masked by the caller)."""
    return (
        VenueScan.objects.filter(venue=venue, scanned_at__gte=period.start, scanned_at__lt=period.end)
        .select_related("resident")
        .only("id", "scanned_at", "resident__name", "resident__id_masked")
        .order_by("-scanned_at", "-id")
    )


def risk_windows(*, venue: Venue | None = None, state: str | None = None) -> QuerySet[RiskWindow]:
    qs = RiskWindow.objects.select_related("venue", "created_by")
    if venue is not None:
        qs = qs.filter(venue=venue)
    if state:
        qs = qs.filter(state=state)
    return qs.order_by("-starts_at", "-id")


def _window_words(snapshot: dict) -> str:
    """A window snapshot (times stored as ISO text) in words, times in the city's zone."""
    import datetime as dt

    from django.utils import timezone
    from django.utils.translation import gettext as _

    from venues.models import RiskWindow

    def when(value: object) -> str:
        try:
            return timezone.localtime(dt.datetime.fromisoformat(str(value))).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return str(value)

    levels = dict(RiskWindow.Level.choices)
    return _("%(start)s to %(end)s, %(level)s risk, version %(version)s") % {
        "start": when(snapshot.get("from")), "end": when(snapshot.get("to")),
        "level": levels.get(snapshot.get("risk_level"), snapshot.get("risk_level", "")),
        "version": snapshot.get("version", "")}


def window_event_lines(event) -> list[str]:
    """A risk-window trace row in words (no raw JSON, one time zone)."""
    from django.utils.translation import gettext as _

    data = event.data if isinstance(event.data, dict) else {}
    lines = []
    if isinstance(data.get("before"), dict):
        lines.append(_("Before: %(window)s.") % {"window": _window_words(data["before"])})
    if isinstance(data.get("after"), dict):
        lines.append(_("After: %(window)s.") % {"window": _window_words(data["after"])})
    if "visitors" in data:
        lines.append(_("%(visitors)s visitors in the window; popups raised %(raised)s, updated %(updated)s, "
                       "withdrawn %(withdrawn)s; %(flagged)s left as they were because someone had already acted "
                       "on them.") % {
            **{k: data.get(k, 0) for k in ("visitors", "raised", "updated", "withdrawn")},
            "flagged": data.get("flagged_count", len(data.get("flagged") or []))})
    return lines
