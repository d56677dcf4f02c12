"""Role checks shared by every app's views and APIs (one place, not inline in each view)."""

from collections.abc import Iterable

from django.contrib import messages
from django.contrib.auth.mixins import AccessMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from rest_framework.permissions import BasePermission

from communities.models import User
from healthkit.unsent import form_page, unsent_keep

STAFF_ROLES = {User.Role.OPERATOR, User.Role.COMMUNITY_WORKER, User.Role.SUPERVISOR, User.Role.ADMINISTRATOR}


def has_role(user: object, roles: Iterable[str]) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and user.is_active
        and (user.is_superuser or user.role in set(roles))
    )


def require_role(user: object, roles: Iterable[str]) -> None:
    if not has_role(user, roles):
        raise PermissionDenied


def role_permission(*roles: str) -> type[BasePermission]:
    """DRF permission class admitting the given roles (and superusers)."""

    class _RolePermission(BasePermission):
        def has_permission(self, request, view) -> bool:
            return has_role(request.user, roles)

    _RolePermission.__name__ = "Role_" + "_".join(roles)
    return _RolePermission


IsStaffRole = role_permission(*STAFF_ROLES)


def granted_feeds(user: User) -> tuple[str, ...]:
    """The feeds an integration client may send: those ticked on its account (User.feeds); with
    none ticked, a lab's client (User.lab set) its lab's test results only, any other client
    every feed (as every client could before feeds existed, so a client set up without them
    keeps working until an administrator narrows it)."""
    if user.feeds:
        return tuple(user.feeds)
    return (User.Feed.TEST_RESULTS,) if user.lab else tuple(User.Feed.values)


def may_send_feed(user: object, feed: str) -> bool:
    """An integration client sends only the feeds granted to it (granted_feeds): a lab's token is
    not a ticket system's or the SMS gateway's. Administrators may send any feed."""
    if has_role(user, (User.Role.ADMINISTRATOR,)):
        return True
    return has_role(user, (User.Role.INTEGRATION,)) and feed in granted_feeds(user)


class IsIntegration(BasePermission):
    """Token endpoints of the integration clients. Each view names its feed (`feed = User.Feed...`);
    a view without one refuses everybody (a new endpoint cannot forget to be scoped)."""

    message = _lazy("This client's token is not registered for this feed. Ask an administrator to grant it.")

    def has_permission(self, request, view) -> bool:
        feed = getattr(view, "feed", None)
        if feed not in User.Feed.values:
            raise ImproperlyConfigured(f"{type(view).__name__} uses IsIntegration without a `feed`")
        return may_send_feed(request.user, feed)


class RoleRequiredMixin(AccessMixin):
    """For console views: `allowed_roles = {...}`; anonymous → login, wrong role → 403."""

    allowed_roles: set[str] = STAFF_ROLES

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        require_role(request.user, self.allowed_roles)
        return super().dispatch(request, *args, **kwargs)

    def handle_no_permission(self) -> HttpResponse:
        if self.request.user.is_authenticated or self.request.method in ("GET", "HEAD"):
            return super().handle_no_permission()
        return login_after_lost_post(self.request)


def login_after_lost_post(request: HttpRequest) -> HttpResponse:
    """A form sent after the session ended (expired, logged out in another tab): the action's URL
    answers POST only, so logging in again must not lead there (a blank 405). Say plainly that
    nothing was saved and come back to the page the form was on (same site), else the console."""
    back = form_page(request) or reverse("console-home")
    unsent_keep(request, back=back)  # what was typed comes back on that page
    messages.warning(request, _("Your session ended before the form was sent, so nothing was saved. "
                                "Log in again to return to the page and enter it once more."))
    return redirect_to_login(back)
