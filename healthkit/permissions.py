"""Role checks shared by every app's views and APIs (one place, not inline in each view)."""

from collections.abc import Iterable

from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from communities.models import User

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
IsIntegration = role_permission(User.Role.INTEGRATION, User.Role.ADMINISTRATOR)


class RoleRequiredMixin(AccessMixin):
    """For console views: `allowed_roles = {...}`; anonymous → login, wrong role → 403."""

    allowed_roles: set[str] = STAFF_ROLES

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        require_role(request.user, self.allowed_roles)
        return super().dispatch(request, *args, **kwargs)
