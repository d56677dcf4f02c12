"""Shared REST plumbing: the exception handler that turns ApplicationError into a 400, and the
schema class that documents every error answer and its shape on every operation."""

from typing import Any

from django.core.exceptions import PermissionDenied
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from healthkit.errors import ApplicationError, RetryLater


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RetryLater):  # a limit: 429 saying when, like DRF's throttles
        return Response({"message": str(exc.message), "extra": exc.extra}, status=status.HTTP_429_TOO_MANY_REQUESTS,
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, ApplicationError):
        return Response(
            {"message": str(exc.message), "extra": exc.extra}, status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    return drf_exception_handler(exc, context)


class ApplicationErrorSerializer(serializers.Serializer):
    """A refusal by a service (`ApplicationError`): a sentence a person can read, and details."""

    message = serializers.CharField(help_text="Why the request was refused, in plain words.")
    extra = serializers.DictField(help_text="Machine-readable details, e.g. {\"max_records\": 10000}.")


class ErrorDetailSerializer(serializers.Serializer):
    """Authentication, permission, not found, media type, throttling and malformed-JSON answers."""

    detail = serializers.CharField()


# Field errors of a request body: {"field": ["message", ...]}, nested like the body
# ({"records": [{}, {"lab": ["..."]}]}); {"non_field_errors": [...]} for the body as a whole.
VALIDATION_ERRORS_SCHEMA = {
    "type": "object",
    "description": "Field errors: each field of the body maps to a list of messages (nested like the body).",
    "additionalProperties": {},
}


class AutoSchema(SpectacularAutoSchema):
    """Name nested `InputSerializer`/`OutputSerializer` classes after their endpoint
    (`HealthCodeApiOutput`), so one-class-per-endpoint APIs never clash in the schema; and add
    the error answers each operation can give (exception_handler above) with their shapes."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in self._error_responses(direction).items():
            responses.setdefault(code, response)
        return responses

    def _error_responses(self, direction) -> dict[str, dict]:
        view = self.view
        application = self.resolve_serializer(ApplicationErrorSerializer, direction).ref
        detail_ref = self.resolve_serializer(ErrorDetailSerializer, direction).ref
        validation = ResolvedComponent(name="ValidationErrors", type=ResolvedComponent.SCHEMA,
                                       object="ValidationErrors", schema=VALIDATION_ERRORS_SCHEMA)
        self.registry.register_on_missing(validation)

        def detail(code: str, description: str) -> dict:
            return self._get_response_for_code(
                OpenApiResponse(ErrorDetailSerializer, description=description), code, direction=direction)

        errors = {"400": self._get_response_for_code(OpenApiResponse(
            {"anyOf": [application, validation.ref, detail_ref]},
            description="Refused: a service's `message` and `extra`, field errors, or a malformed body "
                        "(`detail`)."), "400", direction=direction)}
        public = all(isinstance(p, AllowAny) for p in view.get_permissions())
        if not public:
            challenge = any(a.authenticate_header(None) for a in view.get_authenticators())
            if challenge:
                errors["401"] = detail("401", "No or an invalid token (header `Authorization: Token <key>`).")
            errors["403"] = detail("403", "Your role may not use this operation or see this object.")
        if self.method == "GET" or "{" in self.path:
            errors["404"] = detail("404", "No such object, or an invalid page cursor.")
        if self.method in ("POST", "PUT", "PATCH"):
            # healthkit.request_body: Content-Encoding gzip/deflate is decoded, chunked bodies read
            errors["411"] = detail("411", "A chunked body this server cannot read whole: send `Content-Length`.")
            errors["413"] = detail("413", "The body (decoded, if sent with `Content-Encoding`) is over "
                                          "`DATA_UPLOAD_MAX_MEMORY_SIZE`; `detail` says the limit.")
            errors["415"] = detail("415", "The body's media type is not one this operation reads, or its "
                                          "`Content-Encoding` is not gzip, deflate or identity (see `Accept-Encoding`).")
        if view.get_throttles():
            errors["429"] = self._get_response_for_code(OpenApiResponse(
                {"anyOf": [detail_ref, application]},
                description="Too many requests (`detail`), or a limit of the service reached (`message`, `extra`, "
                            "e.g. a daily cap); `Retry-After` says in how many seconds to try again."),
                "429", direction=direction)
        # healthkit.views_errors: the database could not be reached; nothing was done
        errors["503"] = detail("503", "The database is briefly unreachable; `Retry-After` says when to try again.")
        return errors

    def get_serializer_name(self, serializer, direction: str) -> str:
        cls = serializer.__class__ if not isinstance(serializer, type) else serializer
        qualname = cls.__qualname__
        if "." in qualname and "<locals>" not in qualname:
            return qualname.replace(".", "").removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction).lstrip("_")
