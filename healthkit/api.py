"""Shared REST plumbing: the exception handler that turns ApplicationError into a 400, and the
schema class that documents every error answer and its shape on every operation."""

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import connection, transaction
from django.http import Http404, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from healthkit import clock
from healthkit.errors import ApplicationError, RetryLater, error_body
from healthkit.inputs import TEXT_BAD_LINE, TEXT_BAD_MULTILINE, TEXT_WHITE_SPACE, year_window
from healthkit.models import IdempotentRequest
from healthkit.views_errors import api_error


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error a view raises, in the API's one error shape (healthkit.errors.error_body):
    a service's refusal (ApplicationError) a 400 `refused` with its `extra`, a limit (RetryLater)
    a 429 `limit_reached` with Retry-After, field errors a 400 `invalid` with them in `errors`,
    and DRF's own (authentication, permission, not found, media type, throttling, a malformed
    body) with DRF's code."""
    if isinstance(exc, RetryLater):  # a limit: 429 saying when, like DRF's throttles
        return Response(error_body(exc.message, "limit_reached", extra=exc.extra),
                        status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.message, "refused", extra=exc.extra), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args[:1])  # a service's reason, when it gave one
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()  # never Django's text, which names the model
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        response.data = _api_exception_body(exc)
    return response


def _api_exception_body(exc: exceptions.APIException) -> dict[str, Any]:
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        errors = detail if isinstance(detail, dict) else {api_settings.NON_FIELD_ERRORS_KEY: detail}
        return error_body(exceptions.ValidationError.default_detail, "invalid", errors=errors)
    if isinstance(exc, ApiRefusal):
        return error_body(detail, detail.code, errors=exc.errors, extra=exc.extra)
    code = exc.default_code
    if isinstance(detail, dict) and "message" in detail:  # a parser's refusal naming where (healthkit.inputs)
        return error_body(detail["message"], code, extra=detail.get("extra"))
    if isinstance(detail, list):
        detail = " ".join(str(item) for item in detail)
    extra = {"retry_after": exc.wait} if isinstance(exc, exceptions.Throttled) and exc.wait is not None else None
    return error_body(detail, getattr(detail, "code", None) or code, extra=extra)


class ErrorSerializer(serializers.Serializer):
    """Every error answer of this API (4xx and 5xx) has this shape."""

    detail = serializers.CharField(help_text="What went wrong, in the reader's language (`Accept-Language`).")
    code = serializers.CharField(
        help_text="What a program branches on: `invalid` (field errors, in `errors`), `refused` (a service refused; "
                  "details in `extra`), `unknown_parameters` (`extra.unknown` names them), `limit_reached`, "
                  "`throttled`, `not_authenticated`, `authentication_failed`, `permission_denied`, `not_found`, "
                  "`parse_error`, `malformed`, `length_required`, `too_large`, `unsupported_media_type`, "
                  "`not_acceptable`, `idempotency_key_reused`, `unavailable`, ...")
    errors = serializers.DictField(
        help_text="Field errors: each field maps to a list of messages, nested like the body "
                  "(`{\"records\": {\"3\": {\"lab\": [\"...\"]}}}`); `non_field_errors` for the request as a whole. "
                  "`{}` for other errors.")
    extra = serializers.DictField(help_text="Machine-readable details, e.g. `{\"max_records\": 10000}`; `{}` when none.")


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
        """Every error answer this operation can give, each in the one shape (`Error`)."""
        view = self.view

        def error(code: str, description: str) -> dict:
            return self._get_response_for_code(
                OpenApiResponse(ErrorSerializer, description=description), code, direction=direction)

        takes = sorted(view.query_fields()) if isinstance(view, ApiView) else []
        errors = {"400": error("400", (
            "Refused. `code` says why: `invalid` (field errors of the body or the query, in `errors`), `refused` "
            "(a service refused; `extra` says more), `unknown_parameters` (a query parameter this operation does not "
            "take: it takes " + (", ".join(f"`{name}`" for name in takes) or "none") + "; `extra.unknown` names "
            "them), `parse_error` (a malformed body), `malformed`."))}
        public = all(isinstance(p, AllowAny) for p in view.get_permissions())
        if not public:
            challenge = any(a.authenticate_header(None) for a in view.get_authenticators())
            if challenge:
                errors["401"] = error("401", "No or an invalid token (header `Authorization: Token <key>`).")
            errors["403"] = error("403", "Your role may not use this operation or see this object.")
        if self.method == "GET" or "{" in self.path:
            errors["404"] = error("404", "No such object, or an invalid page cursor.")
        errors["406"] = error("406", "The `Accept` header names no media type this operation answers with.")
        if self.method in ("POST", "PUT", "PATCH"):
            # healthkit.request_body: Content-Encoding gzip/deflate is decoded, chunked bodies read
            errors["411"] = error("411", "A chunked body this server cannot read whole: send `Content-Length`.")
            errors["413"] = error("413", "The body (decoded, if sent with `Content-Encoding`) is over "
                                         "`DATA_UPLOAD_MAX_MEMORY_SIZE`; `detail` says the limit.")
            errors["415"] = error("415", "The body's media type is not one this operation reads, or its "
                                         "`Content-Encoding` is not gzip, deflate or identity (see `Accept-Encoding`).")
        if view.get_throttles():
            errors["429"] = error("429", "Too many requests (`throttled`), or a limit of the service reached "
                                         "(`limit_reached`, e.g. a daily cap); `Retry-After` says in how many seconds "
                                         "to try again.")
        if isinstance(view, IdempotentPost) and self.method == "POST":
            errors["422"] = error("422", "This `Idempotency-Key` was used for another request (method, path or body).")
        # healthkit.views_errors: the database could not be reached; nothing was done
        errors["503"] = error("503", "The database is briefly unreachable; `Retry-After` says when to try again.")
        return errors

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        view = self.view
        if isinstance(view, ApiView) and self.method == "GET" and view.query_fields():
            # what ApiView.read_query checks, as it checks it (a paginator's page_size bounds too);
            # an instance: a class would copy its fields anew, losing choices read from the database
            parameters.append(view.query_checker())
        if isinstance(view, IdempotentPost) and self.method == "POST":
            parameters.append(OpenApiParameter(
                IDEMPOTENCY_HEADER, IDEMPOTENCY_KEY_SCHEMA, OpenApiParameter.HEADER, required=False,
                description="Any unique string of at most 200 printable ASCII characters: the same request sent "
                            "again with it within 24 h (a retry) gets the first answer, with the header "
                            "`Idempotent-Replayed: true`, instead of doing the work twice."))
        return parameters

    def _get_pagination_parameters(self):
        return [] if isinstance(self.view, ApiView) else super()._get_pagination_parameters()

    def get_description(self) -> str:
        description = super().get_description()
        if isinstance(self.view, ApiView):
            description += ("\n\nA query parameter this operation does not list is refused (400 "
                            "`unknown_parameters`, naming it), and so is one sent twice or with a value its schema does "
                            "not allow (400 `invalid`; leave a parameter out rather than sending it empty).")
        return description.strip()

    def get_serializer_name(self, serializer, direction: str) -> str:
        cls = serializer.__class__ if not isinstance(serializer, type) else serializer
        qualname = cls.__qualname__
        if "." in qualname and "<locals>" not in qualname:
            return qualname.replace(".", "").removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction).lstrip("_")


_DAY = r"(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_TIME = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:0[0-9]|1[0-5]):[0-5][0-9])"


def year_window_pattern(*, with_time: bool) -> str:
    """A date (or an RFC 3339 date-time, its offset within ±15:59) in the input boundary's year
    window, as a pattern a generated client checks."""
    first, last = year_window()
    years = "|".join(str(year) for year in range(first, last + 1))
    return f"^(?:{years})-{_DAY}" + (_TIME if with_time else "") + "$"


class YearWindowSchema(OpenApiSerializerFieldExtension):
    """A date of the input boundary (healthkit.inputs) is refused outside the year window (and a
    date-time with an offset beyond ±15:59): declared as a pattern, so a client knows it too."""

    target_class = "healthkit.inputs.DateField"
    with_time = False

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["pattern"] = year_window_pattern(with_time=self.with_time)
        return schema


class InstantWindowSchema(YearWindowSchema):
    target_class = "healthkit.inputs.InstantField"
    with_time = True


class TextFieldSchema(OpenApiSerializerFieldExtension):
    """Text of the input boundary (healthkit.inputs.TextField) refuses control characters (line
    breaks and tabs too, unless multi-line), bidirectional overrides and non-characters, and text
    that is blank once trimmed where blank is not allowed: declared as a pattern."""

    target_class = "healthkit.inputs.TextField"

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        if direction == "request":
            # lone surrogates left out: no UTF-8 text carries one, and pattern engines refuse the range
            bad = (TEXT_BAD_MULTILINE if self.target.multiline else TEXT_BAD_LINE).replace(r"\ud800-\udfff", "")
            if getattr(self.target.parent, "reads_query", False):
                return schema  # a query string's control characters are dropped, not refused (inputs.py)
            # something besides white space (it is trimmed), unless blank is allowed
            filled = f"[^{bad}]*[^{bad}{TEXT_WHITE_SPACE}][^{bad}]*"
            if self.target.allow_blank:
                # in an allOf: drf-spectacular would wrap a pattern of a blank-allowed field in a oneOf
                # with "" (which this pattern takes too: "" would match both)
                schema["allOf"] = [{"pattern": f"^(?:{filled}|[{TEXT_WHITE_SPACE}]*)$"}]
            else:
                schema["pattern"] = f"^{filled}$"
        return schema


# --- The base of every REST endpoint: query parameters ----------------------------------------

class UnknownQueryParameters(exceptions.ParseError):
    default_code = "unknown_parameters"


class ApiView(APIView):
    """The base of every REST endpoint (tests/test_api_query_parameters.py holds every /api/v1/
    view to it). A request's query string is read here, once, for every operation: the view's
    `query_serializer` (its filters; documented as the operation's query parameters by AutoSchema)
    and its paginator's `cursor` and `page_size` are all it takes. A parameter it does not take
    (a client's typo, `?statuss=open`, would otherwise list everything), one sent twice, or a value
    its field refuses (an empty one too: leave a parameter out to leave it unset) is a 400 in the
    API's error shape, naming the parameter, after authentication and permissions (401/403 first).
    The view reads the checked values from `self.query`."""

    query_serializer: type[serializers.Serializer] | None = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.query = self.read_query(request.query_params)

    def query_checker(self, data: dict | None = None) -> serializers.Serializer:
        """The serializer that checks (and documents) the query: the view's `query_serializer`
        and its paginator's parameters."""
        checker = (self.query_serializer or serializers.Serializer)(**({} if data is None else {"data": data}))
        checker.reads_query = True
        if getattr(self, "pagination_class", None):
            for name, field in page_parameters(self.pagination_class()).items():
                checker.fields[name] = field
        return checker

    def query_fields(self) -> list[str]:
        return list(self.query_checker().fields)

    def read_query(self, params) -> dict[str, Any]:
        checker = self.query_checker({name: params[name] for name in params})
        fields = sorted(checker.fields)
        unknown = sorted(name for name in params if name not in checker.fields)
        if unknown:
            shown = [name[:64] for name in unknown]
            raise ApiRefusal(
                _("Unknown query parameters: %(unknown)s. This operation takes: %(allowed)s.") % {
                    "unknown": ", ".join(shown), "allowed": ", ".join(fields) or _("none")},
                "unknown_parameters", errors={name: [_("This operation has no such query parameter.")] for name in shown},
                extra={"unknown": shown, "allowed": fields})
        repeated = {name: [_("Send this parameter once.")] for name in params if len(params.getlist(name)) > 1}
        if repeated:
            raise exceptions.ValidationError(repeated)
        checker.is_valid(raise_exception=True)
        return dict(checker.validated_data)


class ApiRefusal(exceptions.APIException):
    """A 400 of the API boundary with its own `code` and details (exception_handler words it)."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, code: str, *, errors: dict | None = None, extra: dict | None = None) -> None:
        super().__init__(detail, code)
        self.errors, self.extra = errors or {}, extra or {}


def page_parameters(paginator) -> dict[str, serializers.Field]:
    """A cursor paginator's query parameters, as the fields that check them and document them."""
    fields = {paginator.cursor_query_param: serializers.CharField(
        required=False, help_text="The page: follow a list's `next` or `previous` (opaque; a made-up one is a 404).")}
    if paginator.page_size_query_param:
        fields[paginator.page_size_query_param] = serializers.IntegerField(
            required=False, min_value=1, max_value=paginator.max_page_size or paginator.page_size,
            help_text=f"Rows per page (default {paginator.page_size}).")
    return fields


# --- Idempotency-Key ----------------------------------------------------------------------------

IDEMPOTENCY_HEADER = "Idempotency-Key"
# 1 to 200 printable ASCII characters (idempotent_post checks it); no space at either end, which
# HTTP would strip.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"
IDEMPOTENCY_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": IDEMPOTENCY_KEY_PATTERN}
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
            request, *args, **kwargs), refuse=lambda message, code: api_error(message, code, "invalid_idempotency_key" if code == 400 else None),
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
        """The authenticated client, read the way this view authenticates, if it may use this
        operation (None if not: the view answers 401/403 as usual, and the key stays free)."""
        try:
            drf_request = self.initialize_request(request)
            user = drf_request.user
            if user is None or not user.is_authenticated:
                return None
            self.check_permissions(drf_request)
        except exceptions.APIException:
            return None
        return user


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
    if not (len(key) <= 200 and re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key)):
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
