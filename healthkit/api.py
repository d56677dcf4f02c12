"""Shared REST plumbing: the exception handler that turns ApplicationError into a 400."""

from typing import Any

from django.core.exceptions import PermissionDenied
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from healthkit.errors import ApplicationError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(
            {"message": str(exc.message), "extra": exc.extra}, status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    return drf_exception_handler(exc, context)


class AutoSchema(SpectacularAutoSchema):
    """Name nested `InputSerializer`/`OutputSerializer` classes after their endpoint
    (`HealthCodeApiOutput`), so one-class-per-endpoint APIs never clash in the schema."""

    def get_serializer_name(self, serializer, direction: str) -> str:
        cls = serializer.__class__ if not isinstance(serializer, type) else serializer
        qualname = cls.__qualname__
        if "." in qualname and "<locals>" not in qualname:
            return qualname.replace(".", "").removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction)
