"""Open311 GeoReport v2 (`/open311/v2/`): standard civic-issue clients file and track appeals.

services.json is public. requests need an `api_key` (a DRF token of an integration client or a
hotline account; in the form body of a POST, in `Authorization: Token <key>` for reads, never in
the query string, which access logs keep): a client sees the requests it filed; hotline staff see
all. Responses carry no personal data (no description, no address text: the community name stands in for the address).
JSON and XML (`.xml`). Field mapping: docs/appeals.md.
"""

import datetime as dt
import json
from xml.etree import ElementTree as ET

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.db.models import Prefetch
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authtoken.models import Token

from appeals import ratelimit, selectors, services
from appeals.models import Appeal, AppealEvent
from communities.models import PersonalDataAccess, User
from communities.services import access_log
from healthkit import clock, inputs
from healthkit.api import IDEMPOTENCY_HEADER, idempotent_post
from healthkit.auth import api_token_refusal
from healthkit.errors import ApplicationError
from healthkit.inputs import NAME_MAX
from healthkit.models import PopupType
from healthkit.permissions import IsIntegration, has_role, may_send_feed
from healthkit.views_errors import body_too_large_message, database_refused, service_unavailable

CLIENT_ROLES = (User.Role.INTEGRATION, User.Role.OPERATOR, User.Role.SUPERVISOR, User.Role.ADMINISTRATOR)
MAX_LIST = 1000
FORMATS = ("json", "xml")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
GROUP = "Health Kit popup appeals"


class Open311Error(Exception):
    def __init__(self, code: int, description: str, *, retry_after: int | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after  # seconds, sent as Retry-After (429)


# XML element name of one item of each list (GeoReport v2 examples).
_ITEM = {"services": "service", "service_requests": "request", "errors": "error",
         "attributes": "attribute", "values": "value"}


def _xml(parent: ET.Element, tag: str, value) -> None:
    element = ET.SubElement(parent, tag)
    _fill(element, tag, value)


def _fill(element: ET.Element, tag: str, value) -> None:
    if isinstance(value, list):
        for entry in value:
            _xml(element, _ITEM.get(tag, "item"), entry)
    elif isinstance(value, dict):
        for key, entry in value.items():
            _xml(element, key, entry)
    elif isinstance(value, bool):  # before int: bool is an int; the spec writes true/false
        element.text = "true" if value else "false"
    else:
        element.text = "" if value is None else str(value)


def _render(data: list | dict, fmt: str, root: str, status: int = 200) -> HttpResponse:
    """JSON as is; XML with `root` holding the list items (or the object's fields)."""
    if fmt == "xml":
        element = ET.Element(root)
        _fill(element, root, data)
        body = b'<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(element, encoding="utf-8")
        return HttpResponse(body, status=status, content_type="text/xml; charset=utf-8")
    return HttpResponse(json.dumps(data, ensure_ascii=False), status=status,
                        content_type="application/json; charset=utf-8")


def _error(exc: Open311Error, fmt: str) -> HttpResponse:
    response = _render([{"code": exc.code, "description": exc.description}], fmt, "errors", status=exc.code)
    if exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


def _services() -> list[dict]:
    emergency = {c.value for c in Appeal.EMERGENCY_CATEGORIES}
    return [
        {"service_code": code, "service_name": str(label), "description": str(label), "metadata": True,
         "type": "realtime", "keywords": "health code, popup, appeal" + (", emergency" if code in emergency else ""),
         "group": GROUP}
        for code, label in Appeal.Category.choices
    ]


def _definition(code: str) -> dict:
    return {"service_code": code, "attributes": [
        {"variable": True, "code": "id_number", "datatype": "string", "required": True, "order": 1,
         "datatype_description": _("18-character national ID number"), "description": _("National ID number")},
        {"variable": True, "code": "popup_type", "datatype": "singlevaluelist", "required": False, "order": 2,
         "datatype_description": "", "description": _("Popup number shown"),
         "values": [{"key": str(v), "name": str(label)} for v, label in PopupType.choices]},
        {"variable": True, "code": "outside_since", "datatype": "datetime", "required": code == "stranded",
         "order": 3, "datatype_description": _("Date, e.g. 2022-10-08"),
         "description": _("Outside the city since (required for stranded residents)")},
    ]}


def _text(data, name: str, max_length: int, *, multiline: bool = False) -> str:
    """A form field through the input boundary (healthkit.inputs): control characters and text
    over the column's length are a 400 naming the field, never cut, never a crash."""
    try:
        return inputs.text(data.get(name, ""), max_length=max_length, required=False, multiline=multiline)
    except inputs.InputError as exc:
        raise Open311Error(400, f"{name}: {exc.message}") from None


def _refuse_key_in_address(request) -> None:
    """An api_key in the query string is written to every access log and proxy log on the way:
    refused on every method (before it is looked up), so a client learns at once to send it as
    GeoReport v2 says, in the form body of a POST, or in the header `Authorization: Token <key>`
    for the reads (SECURITY.md)."""
    if "api_key" in request.GET:
        raise Open311Error(400, _("Do not put api_key in the address: access logs keep it. Send it in "
                                  "the form body of a POST, or as the header Authorization: Token <key>."))


def _header_key(request) -> str:
    scheme, _sep, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "token" else ""


def _client(request) -> User:
    """The key from the POST form body (GeoReport v2) or the Authorization header; never the URL."""
    try:
        form_key = request.POST.get("api_key") if request.method == "POST" else None
        key = inputs.text(form_key or _header_key(request), max_length=64, required=False)
    except inputs.InputError:
        key = ""
    token = Token.objects.select_related("user").filter(key=key).first() if key else None
    if token is not None and api_token_refusal(token) is not None:  # the API's one token rule
        token = None
    if token is None or not has_role(token.user, CLIENT_ROLES):
        raise Open311Error(403, _("A valid api_key is required: in the form body of a POST, or as the header "
                                    "Authorization: Token <key>."))
    if token.user.role == User.Role.INTEGRATION and not may_send_feed(token.user, User.Feed.OPEN311):
        raise Open311Error(403, str(IsIntegration.message))  # a lab's or feed's token is not a ticket system's
    return token.user


def _scope(user: User):
    if has_role(user, selectors.HANDLER_ROLES):
        return selectors.appeals_visible_to(user)
    return Appeal.objects.filter(created_by=user, channel=Appeal.Channel.OPEN311)


def _when(value: str | None) -> dt.datetime | None:
    """An Open311 (ISO 8601) date parameter; a malformed one is a 400, not a crash."""
    if not value:
        return None
    try:
        parsed = parse_datetime(value.replace(" ", "+"))  # '+' of the offset arrives as a space
    except ValueError:
        parsed = None
    if parsed is None:
        raise Open311Error(400, _("Dates must be ISO 8601, e.g. 2022-11-20T08:00:00+08:00."))
    try:
        inputs.in_year_window(parsed.year)  # before any arithmetic: year 0001 would overflow
        return inputs.instant(parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed))
    except inputs.InputError as exc:
        raise Open311Error(400, exc.message) from None


def _date(value: str) -> dt.date | None:
    """A date attribute: YYYY-MM-DD (a full ISO 8601 datetime gives its date); malformed is a 400."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return inputs.date(value[:10])
    except inputs.InputError:
        raise Open311Error(400, _("attribute[outside_since] must be a date, e.g. 2022-10-08.")) from None


def _iso(value: dt.datetime | None) -> str | None:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else None


def _check_jurisdiction(request) -> None:
    """GeoReport v2: jurisdiction_id is optional for an endpoint serving one jurisdiction; a
    different one is not ours (404), never silently served."""
    wanted = request.POST.get("jurisdiction_id") or request.GET.get("jurisdiction_id") or ""
    if wanted and wanted != settings.OPEN311_JURISDICTION_ID:
        raise Open311Error(404, _("Unknown jurisdiction_id."))


def _check_form(request) -> None:
    """Open311 posts form fields; a JSON body would otherwise read as "no api_key"."""
    if request.content_type not in FORM_TYPES:
        raise Open311Error(400, _("Send the fields form-encoded (application/x-www-form-urlencoded), "
                                  "as Open311 GeoReport v2 says; JSON bodies are not read."))


def _statuses(value: str) -> set[str]:
    """`status`: open, closed or both, comma-separated (spec); anything else is a 400."""
    wanted = {s.strip().lower() for s in value.split(",") if s.strip()}
    if wanted - {"open", "closed"}:
        raise Open311Error(400, _("status must be open, closed or both, comma-separated."))
    return wanted


def _rows(qs):
    """What _request_row reads, in a fixed number of queries for a list or one request alike,
    so list and detail give the same status_notes."""
    latest_public = AppealEvent.objects.filter(public=True).order_by("-at", "-id")[:1]
    return qs.select_related("community", "routed_community").prefetch_related(
        Prefetch("events", queryset=latest_public, to_attr="public_events"))


def _request_row(appeal: Appeal) -> dict:
    last = next(iter(appeal.public_events), None)
    community = appeal.routed_community or appeal.community
    return {
        "service_request_id": appeal.reference,
        "status": "closed" if appeal.status == Appeal.Status.CLOSED else "open",
        "status_notes": appeal.close_reason if appeal.status == Appeal.Status.CLOSED else (
            str(last.get_kind_display()) if last else str(Appeal.Status(appeal.status).label)),
        "service_name": str(Appeal.Category(appeal.category).label),
        "service_code": appeal.category,
        "description": "",
        "agency_responsible": str(appeal.routed_community) if appeal.routed_community else "12345",
        "service_notice": _("Free of charge. Nobody can sell a faster process."),
        "requested_datetime": _iso(appeal.created_at),
        "updated_datetime": _iso(appeal.updated_at),
        "expected_datetime": _iso(appeal.sla_due_at),
        "address": str(community) if community else "",
        "address_id": community.code if community else "",
        "zipcode": "",
        "lat": None,
        "long": None,
        "media_url": "",
    }


@method_decorator(csrf_exempt, name="dispatch")
class Open311View(View):
    feed = User.Feed.OPEN311  # what an integration client's key must be granted (_client)

    def dispatch(self, request, *args, fmt: str = "json", **kwargs):
        self.fmt = fmt
        try:
            try:
                if request.method == "POST":
                    _check_form(request)
                _check_jurisdiction(request)  # parses the body and query string
                _refuse_key_in_address(request)
            except RequestDataTooBig:  # the limit, as on every other path (healthkit.views_errors)
                raise Open311Error(413, body_too_large_message()) from None
            # BadRequest: a form body declared in another charset than UTF-8 (Django refuses it)
            except (MultiPartParserError, SuspiciousOperation, BadRequest):
                raise Open311Error(400, _("The request body or query string is malformed.")) from None
            return super().dispatch(request, *args, **kwargs)
        except Open311Error as exc:
            return _error(exc, fmt)
        except (OperationalError, InterfaceError) as exc:
            if not database_refused(exc):
                raise
            return service_unavailable(request, exc, render=lambda message: _error(Open311Error(503, message), fmt))

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise Open311Error(405, _("Method not allowed."))


class ServicesView(Open311View):
    def get(self, request):
        return _render(_services(), self.fmt, "services")


class ServiceDefinitionView(Open311View):
    def get(self, request, code: str):
        if code not in Appeal.Category.values:
            raise Open311Error(404, _("Unknown service_code."))
        return _render(_definition(code), self.fmt, "service_definition")


class RequestsView(Open311View):
    def get(self, request):
        user = _client(request)
        qs = _rows(_scope(user))
        ids = [r.strip().upper() for r in request.GET.get("service_request_id", "").split(",") if r.strip()]
        if ids:
            qs = qs.filter(reference__in=ids[:MAX_LIST])
        else:
            end = _when(request.GET.get("end_date")) or clock.now()
            start = _when(request.GET.get("start_date")) or end - dt.timedelta(days=90)
            qs = qs.filter(created_at__gte=start, created_at__lte=end)
            if request.GET.get("service_code"):
                qs = qs.filter(category__in=request.GET["service_code"].split(","))
            wanted = _statuses(request.GET.get("status", ""))
            if wanted == {"open"}:
                qs = qs.filter(status__in=Appeal.OPEN_STATUSES)
            elif wanted == {"closed"}:
                qs = qs.filter(status=Appeal.Status.CLOSED)
        rows = [_request_row(a) for a in qs.order_by("-created_at", "-id")[:MAX_LIST]]
        return _render(rows, self.fmt, "service_requests")

    def post(self, request):
        user = _client(request)
        if request.headers.get(IDEMPOTENCY_HEADER) is None:
            return self._file(request, user)
        # A client retrying after a timeout sends the same key: one appeal, the first answer again
        # (the form and its media as read: healthkit.api.request_identity).
        return idempotent_post(request, client=user, run=lambda: self._answer(self._file, request, user),
                               refuse=lambda message, code: _error(Open311Error(code, message), self.fmt),
                               recheck=lambda answer: self._answer(self._replay_check, user, answer))

    def _replay_check(self, user: User, answer) -> None:
        """A replayed filing passes what a fresh one does before its work (the client's token,
        role and feed: _client, above; the filing rate limit) and is audited: the appeal it
        names (a JSON answer's service_request_id), seen again by this client."""
        try:
            ratelimit.hit("file_ip", f"open311:{user.pk}")
        except ratelimit.RateLimited as exc:
            raise Open311Error(429, exc.message, retry_after=exc.retry_after) from None
        reference = answer[0].get("service_request_id") if (
            isinstance(answer, list) and answer and isinstance(answer[0], dict)) else None
        appeal = _scope(user).filter(reference=reference).only("pk", "resident_id").first() if reference else None
        if appeal is not None:
            access_log(actor=user, resident_id=appeal.resident_id, action=PersonalDataAccess.Action.VIEW,
                       context=f"appeal:{appeal.pk}:open311-replay")

    def _answer(self, work, *args) -> HttpResponse:
        """The answer to keep with the key: refusals too, in Open311's error list."""
        try:
            return work(*args)
        except Open311Error as exc:
            return _error(exc, self.fmt)

    def _file(self, request, user: User) -> HttpResponse:
        ratelimit_key = f"open311:{user.pk}"
        try:
            ratelimit.hit("file_ip", ratelimit_key)
        except ratelimit.RateLimited as exc:
            raise Open311Error(429, exc.message, retry_after=exc.retry_after) from None
        p = {name: _text(request.POST, name, size, multiline=name == "description") for name, size in (
            ("service_code", 32), ("address_string", 200), ("lat", 32), ("long", 32), ("attribute[popup_type]", 8),
            ("attribute[outside_since]", 32), ("last_name", 64), ("first_name", 64), ("attribute[id_number]", 32),
            ("phone", 20), ("description", 4000))}
        code = p.get("service_code", "")
        if code not in Appeal.Category.values:
            raise Open311Error(400, _("service_code is missing or unknown."))
        if not p.get("address_string") and not (p.get("lat") and p.get("long")):
            raise Open311Error(400, _("A location is required: address_string (or lat and long)."))
        popup_type = p.get("attribute[popup_type]", "").strip()
        if popup_type and popup_type not in {str(v) for v in PopupType.values}:
            raise Open311Error(400, _("attribute[popup_type] must be a popup number from %(low)d to %(high)d.")
                               % {"low": min(PopupType.values), "high": max(PopupType.values)})
        outside_since = _date(p.get("attribute[outside_since]", ""))
        try:
            appeal, _folded = services.appeal_file_open311(
                client=user, name=_name(p),
                id_number=p.get("attribute[id_number]", ""), phone=p.get("phone", ""), category=code,
                popup_type_claimed=int(popup_type) if popup_type else None,
                address_text=p.get("address_string", ""), description=p.get("description", ""),
                outside_since=outside_since,
            )
        except ApplicationError as exc:
            raise Open311Error(400, exc.message) from None
        return _render([{"service_request_id": appeal.reference,
                         "service_notice": _("Free of charge. Nobody can sell a faster process."),
                         "account_id": None}], self.fmt, "service_requests", status=201)


def _name(p: dict) -> str:
    """last_name + first_name (Chinese order), refused over the register's 64 characters."""
    name = (p["last_name"] + p["first_name"]).strip()
    if len(name) > NAME_MAX:
        raise Open311Error(400, _("first_name and last_name together: at most %(n)d characters.") % {"n": NAME_MAX})
    return name


class RequestDetailView(Open311View):
    def get(self, request, reference: str):
        user = _client(request)
        appeal = _rows(_scope(user)).filter(reference=reference.upper()).first()
        if appeal is None:
            raise Open311Error(404, _("No such service request."))
        return _render([_request_row(appeal)], self.fmt, "service_requests")


class NotFoundView(Open311View):
    """Anything else under open311/v2/ (an unknown format, a malformed service code or request
    id): the Open311 error list, in XML when the path asks for it, never Django's HTML page."""

    def dispatch(self, request, *args, path: str = "", **kwargs):
        fmt = "xml" if path.lower().endswith(".xml") else "json"
        known = path.lower().rsplit(".", 1)[-1] in FORMATS if "." in path else False
        message = _("Not found.") if known else _("Unknown format: use .json or .xml.")
        return _error(Open311Error(404, message), fmt)
