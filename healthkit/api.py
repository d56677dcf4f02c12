"""Shared REST plumbing: the exception handler that turns ApplicationError into a 400, and the
schema class that documents every error answer and its shape on every operation."""

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from healthkit import clock
from healthkit.errors import ApplicationError, RetryLater
from healthkit.models import IdempotentRequest


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RetryLater):  # a limit: 429 saying when, like DRF's throttles
        return Response({"message": str(exc.message), "extra": exc.extra}, status=status.HTTP_429_TOO_MANY_REQUESTS,
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, ApplicationError):
        return Response(
            {"message": str(exc.message), "extra": exc.extra}, status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args[:1])  # a service's reason, when it gave one
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
        if isinstance(view, IdempotentPost) and self.method == "POST":
            errors["422"] = detail("422", "This `Idempotency-Key` was used for another request (method, path or body).")
        # healthkit.views_errors: the database could not be reached; nothing was done
        errors["503"] = detail("503", "The database is briefly unreachable; `Retry-After` says when to try again.")
        return errors

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if isinstance(self.view, IdempotentPost) and self.method == "POST":
            parameters.append(OpenApiParameter(
                IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
                description="Any unique string of at most 200 printable ASCII characters: the same request sent "
                            "again with it within 24 h (a retry) gets the first answer, with the header "
                            "`Idempotent-Replayed: true`, instead of doing the work twice."))
        return parameters

    def get_serializer_name(self, serializer, direction: str) -> str:
        cls = serializer.__class__ if not isinstance(serializer, type) else serializer
        qualname = cls.__qualname__
        if "." in qualname and "<locals>" not in qualname:
            return qualname.replace(".", "").removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction).lstrip("_")


# --- Idempotency-Key ----------------------------------------------------------------------------

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEEPS = (429, 503)  # answers that say "try again": never stored, a retry does the work


class IdempotentPost:
    """Mixed into a POST endpoint that creates or changes something: a request carrying an
    `Idempotency-Key` header (at most 200 printable ASCII characters) runs once per client and
    key. The key is taken and the answer stored in the same transaction as the work, so a
    retry sent while the first runs waits for it and then gets its answer (status and body, with
    `Idempotent-Replayed: true`); a first try that failed (5xx, 429, 503, a crash) leaves no
    trace and the retry does the work. The same key with another method, path or body is a 422.
    Without the header nothing changes. Keys are kept IDEMPOTENCY_KEY_HOURS.

    A replay is answered only after the checks a fresh request passes before its work: the
    view's authentication, permission classes and throttles (DRF's `initial`), then
    `replay_check`, the view's own access to the object its URL names (the audited door its post
    goes through, so the replay is audited like the request). A caller whose role or community
    changed since gets the refusal a fresh request would get, not the stored answer."""

    def replay_check(self, request, answer: Any, *args, **kwargs) -> None:
        """Raise what the view's post raises before its work when the caller may not act here
        (PermissionDenied, Http404), and write what it audits. `answer` is the stored answer's
        JSON (None if it is not JSON). A view whose URL names an object overrides this with the
        same access call its post makes; tests/test_idempotent_replay.py holds every such view to
        it."""

    def dispatch(self, request, *args, **kwargs):
        if request.method != "POST" or request.headers.get(IDEMPOTENCY_HEADER) is None:
            return super().dispatch(request, *args, **kwargs)
        user = self._idempotency_client(request)
        if user is None:  # not authenticated: the view answers 401/403 as usual
            return super().dispatch(request, *args, **kwargs)
        return idempotent_post(request, client=user, run=lambda: super(IdempotentPost, self).dispatch(
            request, *args, **kwargs), refuse=lambda message, code: JsonResponse({"detail": message}, status=code),
            recheck=lambda answer: self._replay_recheck(request, answer, *args, **kwargs))

    def _replay_recheck(self, request, answer, *args, **kwargs) -> HttpResponse | None:
        """The fresh request's checks for a replay (see the class): None to replay, else the
        refusal in the view's own error shape."""
        self.args, self.kwargs = args, kwargs
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request = drf_request
        self.headers = self.default_response_headers
        try:
            self.initial(drf_request, *args, **kwargs)
            self.replay_check(drf_request, answer, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the view's own handler words it (re-raises a bug)
            response = self.finalize_response(drf_request, self.handle_exception(exc), *args, **kwargs)
            response.render()
            return response
        return None

    def _idempotency_client(self, request):
        """The authenticated client, read the way this view authenticates (None if not)."""
        try:
            drf_request = self.initialize_request(request)
            user = drf_request.user
        except exceptions.APIException:
            return None
        return user if user is not None and user.is_authenticated else None


def idempotent_post(request, *, client, run: Callable[[], HttpResponse],
                    refuse: Callable[[str, int], HttpResponse],
                    recheck: Callable[[Any], HttpResponse | None]) -> HttpResponse:
    """Run `run()` (the POST's work, answering a response) once per `client` and the request's
    `Idempotency-Key` (see IdempotentPost; the caller checked the header is there and who the
    client is). `refuse(message, status)` words a refusal (bad key 400, key reused 422) in the
    endpoint's own error shape; besides method and path, request_identity tells one request from
    another. Before a stored answer is given again, `recheck(answer)` (the answer's JSON, or None)
    runs the checks and the audit a fresh request would (the caller's permission and scope now,
    not when the key was first used): a response from it is the answer instead. Locks the key's
    row until the work commits."""
    key = request.headers[IDEMPOTENCY_HEADER]
    if not (0 < len(key) <= 200 and key.isascii() and key.isprintable()):
        return refuse(_("An Idempotency-Key is 1 to 200 printable ASCII characters."), 400)
    try:
        body = request_identity(request)
    except (RequestDataTooBig, SuspiciousOperation, MultiPartParserError):
        return run()  # the usual 413 or 400
    fingerprint = hashlib.sha256(b"\n".join([request.method.encode(), request.path.encode(), body])).hexdigest()
    with transaction.atomic():
        stored = _idempotency_take(client=client, key=key, fingerprint=fingerprint)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                return refuse(_("This Idempotency-Key was used for another request; use a new key for "
                                "a new request."), 422)
            refusal = recheck(_stored_json(stored))
            return refusal if refusal is not None else _idempotency_answer(stored)
        response = run()
        if response.status_code >= 500 or response.status_code in _KEEPS:
            transaction.set_rollback(True)  # as if never sent: the retry does the work
            return response
        if hasattr(response, "render"):
            response.render()
        IdempotentRequest.objects.filter(client=client, key=key).update(
            status=response.status_code, content_type=response.get("Content-Type", ""), body=response.content)
    return response


def request_identity(request) -> bytes:
    """What tells a request from another besides method and path: its body; for a form, the
    fields and files as read (every multipart body has its own boundary, so a client's retry of
    the same upload differs byte for byte), each file by name, file name and SHA-256 of its
    content. Reading the form leaves it where DRF and the view find it."""
    if request.content_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return request.body
    parts = [urlencode(sorted(request.POST.lists()), doseq=True).encode()]
    for name, files in sorted(request.FILES.lists()):
        for upload in files:
            digest = hashlib.sha256()
            for chunk in upload.chunks():
                digest.update(chunk)
            upload.seek(0)
            parts.append(b"\0".join([name.encode(), (upload.name or "").encode(), digest.hexdigest().encode()]))
    return b"\n".join(parts)


def _idempotency_take(*, client, key: str, fingerprint: str):
    """Take the key for this request (None) or return the stored answer of the request that took
    it; waits while another transaction holds the key. An expired key (the hourly purge not yet
    past it) is taken afresh."""
    horizon = clock.now() - dt.timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    IdempotentRequest.objects.filter(client=client, key=key, created_at__lt=horizon).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO healthkit_idempotentrequest (client_id, key, fingerprint, status, content_type, body, "
            "created_at) VALUES (%s, %s, %s, 0, '', ''::bytea, now()) "
            "ON CONFLICT (client_id, key) DO NOTHING RETURNING id", [client.pk, key, fingerprint])
        if cursor.fetchone() is not None:
            return None
    return IdempotentRequest.objects.get(client=client, key=key)


def _stored_json(stored) -> Any:
    if "json" not in (stored.content_type or ""):
        return None
    try:
        return json.loads(bytes(stored.body))
    except ValueError:
        return None


def _idempotency_answer(stored) -> HttpResponse:
    response = HttpResponse(bytes(stored.body), status=stored.status, content_type=stored.content_type or None)
    response[REPLAYED_HEADER] = "true"
    return response
