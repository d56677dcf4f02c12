"""REST API for tickets and evidence (mounted at /api/v1/appeals/), scoped by role.

One class per endpoint with explicit serializers; personal data only masked; look-ups by
reference (not personal data). Evidence bytes go through the same check as the console view.
"""

import re

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from appeals import selectors, services
from appeals.evidence import private_file_response
from appeals.filters import AppealFilter
from appeals.models import OPERATOR_OUTCOMES, Appeal, AppealContact
from communities.models import Community, User
from healthkit.api import ApiView, IdempotentPost
from healthkit.errors import ApplicationError
from healthkit.inputs import DateField, TextField
from healthkit.models import PopupType
from healthkit.permissions import IsStaffRole, role_permission
from healthkit.selectors import popup_explain

IsHandler = role_permission(*selectors.HANDLER_ROLES)
REFERENCE = re.compile(r"[0-9A-Za-z-]{1,20}")


class AppealCursorPagination(CursorPagination):
    # Served by appeal_seek_created_idx (created_at, id): no OFFSET, no COUNT(*).
    ordering = ("-created_at", "-id")
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class AppealSummarySerializer(serializers.Serializer):
    reference = serializers.CharField()
    status = serializers.CharField()
    category = serializers.CharField()
    priority = serializers.IntegerField()
    channel = serializers.CharField()
    resident = serializers.CharField(source="person_masked")
    popup_type = serializers.IntegerField(source="popup_type_claimed", allow_null=True)
    community = serializers.CharField(source="community.name", allow_null=True, default=None)
    routed_community = serializers.CharField(source="routed_community.name", allow_null=True, default=None)
    assigned_to = serializers.CharField(source="assigned_to.username", allow_null=True, default=None)
    repeat_count = serializers.IntegerField()
    sla_due_at = serializers.DateTimeField(allow_null=True)
    sla_breached_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    outcome = serializers.CharField()


# The list's rows, read with .values() and shaped by plain functions: the same fields, types and
# time format as AppealSummarySerializer (which stays the documented schema), without DRF's
# per-field machinery. The times come as text from PostgreSQL (selectors.IsoDateTime), in the
# current time zone; created_at is also read as a datetime, the cursor's position.
_SUMMARY_VALUES = ("id", "reference", "status", "category", "priority", "channel", "claimed_masked",
                   "resident_id", "resident__name", "resident__id_masked", "resident__id_hash",
                   "popup_type_claimed", "community__name", "routed_community__name", "assigned_to__username",
                   "repeat_count", "created_at", "outcome")
_SUMMARY_TIMES = ("sla_due_at", "sla_breached_at", "created_at", "closed_at")


def appeal_summary_values(queryset: QuerySet[Appeal]) -> QuerySet:
    """The values() rows appeal_summaries() shapes, times formatted in the current time zone."""
    zone = timezone.get_current_timezone()
    return queryset.values(*_SUMMARY_VALUES, **{f"{name}_text": selectors.IsoDateTime(name, zone=zone)
                                               for name in _SUMMARY_TIMES})


def appeal_summaries(rows: list[dict]) -> list[dict]:
    """AppealSummarySerializer's output for appeal_summary_values() rows."""
    masked = selectors.person_masked_from_values
    return [{
        "reference": row["reference"], "status": row["status"], "category": row["category"],
        "priority": row["priority"], "channel": row["channel"], "resident": masked(row),
        "popup_type": row["popup_type_claimed"], "community": row["community__name"],
        "routed_community": row["routed_community__name"], "assigned_to": row["assigned_to__username"],
        "repeat_count": row["repeat_count"], "sla_due_at": row["sla_due_at_text"],
        "sla_breached_at": row["sla_breached_at_text"], "created_at": row["created_at_text"],
        "closed_at": row["closed_at_text"], "outcome": row["outcome"],
    } for row in rows]


def _appeal_by_reference(request, reference: str, replay: bool = False) -> Appeal:
    """The appeal behind a reference, through the audited door (selectors.appeal_access); a
    replayed POST (healthkit.api.IdempotentPost) goes through it too, marked so in the audit."""
    if not REFERENCE.fullmatch(reference):  # a path parameter, checked before any query
        raise PermissionDenied
    appeal = selectors.appeals_visible_to(request.user).filter(reference=reference.upper()).only("pk").first()
    if appeal is None:
        raise PermissionDenied
    return selectors.appeal_access(user=request.user, pk=appeal.pk,
                                   where=f"api:{request.method.lower()}:{request.resolver_match.url_name}"
                                         + (":replay" if replay else ""))


class _ReplayByReference:
    """A replayed POST on an appeal passes the appeal's audited door as the request did."""

    def replay_check(self, request, answer, reference: str) -> None:
        _appeal_by_reference(request, reference, replay=True)


class AppealListApi(ApiView):
    """Tickets you may see, newest first (cursor pagination), with the console's filters."""

    permission_classes = [IsStaffRole]
    pagination_class = AppealCursorPagination  # also tells the schema the list is paged

    class FilterSerializer(serializers.Serializer):
        """The console queue's filters (appeals.filters.AppealFilter), each with the values it takes."""

        queue = serializers.ChoiceField(choices=[q for q, _label in AppealFilter.QUEUES], required=False,
                                        help_text="Default `all`.")
        status = serializers.ChoiceField(choices=Appeal.Status.choices, required=False,
                                         help_text="Within the queue: a status outside it matches nothing.")
        reference = TextField(required=False, max_length=20)
        category = serializers.ChoiceField(choices=Appeal.Category.choices, required=False)
        # the filter's own choices, so the schema's enum says what it accepts (an integer outside
        # them was documented as valid and answered 400 "Invalid filter")
        priority = serializers.ChoiceField(choices=Appeal.Priority.choices, required=False)
        channel = serializers.ChoiceField(choices=Appeal.Channel.choices, required=False)
        popup_type = serializers.ChoiceField(choices=PopupType.choices, required=False)
        district = serializers.ChoiceField(choices=[], required=False, help_text="A district's id.")
        community = TextField(required=False, max_length=100, help_text="A community's code, or part of its name.")
        assigned_to = serializers.IntegerField(required=False, min_value=1,
                                               help_text="An active operator's or supervisor's user id.")
        escalated = serializers.BooleanField(required=False)
        repeated = serializers.BooleanField(required=False, help_text="Appealed again.")
        stranded = serializers.BooleanField(required=False, help_text="Outside the city for over a month.")
        filed_after = DateField(required=False, help_text="Filed on or after this day.")
        filed_before = DateField(required=False, help_text="Filed on or before this day.")
        closed_after = DateField(required=False, help_text="Closed on or after this day.")
        closed_before = DateField(required=False, help_text="Closed on or before this day.")

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # the city's districts, as the filter reads them (cached): the schema's enum lists them.
            # Without a database (`manage.py check --deploy` in a build, a schema generated
            # offline) the schema still builds, with a plain id in place of the enum.
            try:
                districts = AppealFilter.district_options()
            except DatabaseError:
                districts = []
            if districts:
                self.fields["district"].choices = districts
            else:  # none set up yet: an empty enum is no valid schema (and every district is refused)
                self.fields["district"] = serializers.IntegerField(required=False, help_text="A district's id.")

    query_serializer = FilterSerializer

    @extend_schema(responses=AppealSummarySerializer(many=True))
    def get(self, request):
        # the values as checked, spelled as the filter set reads them
        params = {name: str(value).lower() if isinstance(value, bool) else str(value)
                  for name, value in self.query.items() if name in self.FilterSerializer().fields}
        params.setdefault("queue", "all")
        filterset = AppealFilter(params, queryset=selectors.appeals_visible_to(request.user), user=request.user)
        if not filterset.is_valid():
            raise serializers.ValidationError({name: [str(message) for message in messages]
                                               for name, messages in filterset.errors.items()})
        paginator = self.pagination_class()
        if selectors.scoped_by_community(request.user):
            # A community worker's page: its keys first, from appeal_responsible_idx alone (it
            # carries the filtered columns), then those rows. Asked for the rows in one statement,
            # the planner weighed reading each of the worker's appeals from the table against
            # walking the city's appeals newest first, and walked (19 k rows for 51 at 1 M).
            keys = paginator.paginate_queryset(filterset.qs.values("id", "created_at"), request, view=self)
            page = appeal_summary_values(Appeal.objects.filter(pk__in=[key["id"] for key in keys]))
            page = list(page.order_by(*AppealCursorPagination.ordering))
        else:
            page = paginator.paginate_queryset(appeal_summary_values(filterset.qs), request, view=self)
        return paginator.get_paginated_response(appeal_summaries(page))


class AppealSearchApi(ApiView):
    """Appeals of one person by exact ID number or phone, in the body (never the URL); the
    value is hashed with the registry's key and every search is audited."""

    permission_classes = [IsStaffRole]

    class InputSerializer(serializers.Serializer):
        id_number = TextField(required=False, allow_blank=True, max_length=32)
        phone = TextField(required=False, allow_blank=True, max_length=20)

        def validate(self, attrs):
            if not attrs.get("id_number") and not attrs.get("phone"):
                raise serializers.ValidationError(_("Enter an ID number or a phone number."))
            return attrs

    @extend_schema(request=InputSerializer, responses=AppealSummarySerializer(many=True))
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rows = selectors.appeals_for_person(user=request.user, context="api:appeals-search", **data.validated_data)
        return Response(AppealSummarySerializer(rows, many=True).data)


class AppealDetailApi(ApiView):
    """One appeal by its reference: history, call log and, where your role may see it, the popup's explanation."""

    permission_classes = [IsStaffRole]

    class OutputSerializer(AppealSummarySerializer):
        description = serializers.CharField()
        address_text = serializers.CharField()
        contact_phone = serializers.CharField(source="contact_phone_masked")
        popup_explanation = serializers.ListField(child=serializers.CharField())
        evidence_count = serializers.IntegerField()
        history = serializers.ListField(child=serializers.DictField())
        call_log = serializers.ListField(child=serializers.DictField())

    @extend_schema(responses=OutputSerializer)
    def get(self, request, reference: str):
        appeal = _appeal_by_reference(request, reference)
        # The resident's record only where selectors.can_see_record allows (appeal_access decided).
        appeal.popup_explanation = popup_explain(appeal.popup) if appeal.popup and appeal.shows_record else []
        appeal.evidence_count = selectors.appeal_evidence(appeal).count()
        appeal.history = [
            {"kind": e.kind, "label": e.get_kind_display(), "at": e.at.isoformat(), "actor": e.actor_label,
             "note": e.note, "public": e.public}
            for e in selectors.appeal_history(appeal)
        ]
        appeal.call_log = [
            {"at": c.at.isoformat(), "direction": c.direction, "outcome": c.outcome, "note": c.note,
             "operator": c.operator.get_username()}
            for c in appeal.contacts.select_related("operator").order_by("at", "id")
        ]
        return Response(self.OutputSerializer(appeal).data)


class AppealCreateApi(IdempotentPost, ApiView):
    """An appeal taken by phone (operators): checks the caller against the registry (never writes
    it), logs the call; the same unconfirmed-filer rules as the online form."""

    permission_classes = [IsHandler]

    class InputSerializer(serializers.Serializer):
        name = TextField(max_length=64)
        id_number = TextField(max_length=32)
        phone = TextField(max_length=20)
        category = serializers.ChoiceField(choices=Appeal.Category.choices)
        popup_type = serializers.ChoiceField(choices=PopupType.choices, required=False, allow_null=True)
        currently_outside_city = serializers.BooleanField(required=False, default=False)
        outside_since = DateField(required=False, allow_null=True)
        wishes_to_return = serializers.BooleanField(required=False, default=False)
        community_code = TextField(required=False, allow_blank=True)
        address = TextField(required=False, allow_blank=True, max_length=200)
        description = TextField(required=False, allow_blank=True, max_length=4000, multiline=True)
        call_outcome = serializers.ChoiceField(choices=AppealContact.Outcome.choices, default="reached")
        call_note = TextField(multiline=True, max_length=1000, required=False, allow_blank=True)
        identity_acknowledged = serializers.BooleanField(
            required=False, default=False,
            help_text="Set after checking with the caller when the name does not match the registry for the ID "
                      "number (or it is not registered): filed as an unconfirmed filer's appeal. Without it such "
                      "a request is answered 400 with extra.field = identity_acknowledged.")

    class OutputSerializer(serializers.Serializer):
        reference = serializers.CharField()
        folded = serializers.BooleanField()

    def replay_check(self, request, answer) -> None:
        """The appeal the call was filed into, through its audited door (the filing looked the
        caller up in the registry; the replay names the same person's appeal)."""
        if isinstance(answer, dict) and isinstance(answer.get("reference"), str):
            _appeal_by_reference(request, answer["reference"], replay=True)

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        community = Community.objects.filter(code=d.get("community_code") or "").first()
        appeal, folded = services.appeal_file_by_phone(
            actor=request.user, name=d["name"], id_number=d["id_number"], phone=d["phone"], category=d["category"],
            popup_type_claimed=d.get("popup_type"), community=community, address_text=d.get("address", ""),
            description=d.get("description", ""), call_outcome=d["call_outcome"], call_note=d.get("call_note", ""),
            currently_outside_city=d["currently_outside_city"], outside_since=d.get("outside_since"),
            wishes_to_return=d["wishes_to_return"], identity_acknowledged=d["identity_acknowledged"])
        return Response(self.OutputSerializer({"reference": appeal.reference, "folded": folded}).data,
                        status=status.HTTP_201_CREATED)


class AppealAssignApi(_ReplayByReference, IdempotentPost, ApiView):
    """Assign an appeal to an operator (by user name), or to yourself."""

    permission_classes = [IsHandler]

    class InputSerializer(serializers.Serializer):
        username = TextField(max_length=150, required=False, help_text="Omit to assign to yourself.")

    @extend_schema(request=InputSerializer, responses=AppealSummarySerializer)
    def post(self, request, reference: str):
        appeal = _appeal_by_reference(request, reference)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignee = request.user
        if data.validated_data.get("username"):
            assignee = User.objects.filter(username=data.validated_data["username"]).first()
            if assignee is None:
                raise ApplicationError(_("No such operator."))
        appeal = services.appeal_assign(appeal=appeal, assignee=assignee, actor=request.user)
        return Response(AppealSummarySerializer(appeal).data)


class AppealRouteApi(_ReplayByReference, IdempotentPost, ApiView):
    """Route an appeal to a community (by the community's code) for clearance."""

    permission_classes = [IsHandler]

    class InputSerializer(serializers.Serializer):
        community_code = TextField(max_length=32)
        reason = TextField(max_length=200, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses=AppealSummarySerializer)
    def post(self, request, reference: str):
        appeal = _appeal_by_reference(request, reference)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        community = Community.objects.filter(code=data.validated_data["community_code"]).first()
        if community is None:
            raise ApplicationError(_("No community has that code."))
        appeal = services.appeal_route(appeal=appeal, community=community, actor=request.user,
                                       reason=data.validated_data.get("reason", ""))
        return Response(AppealSummarySerializer(appeal).data)


class AppealCloseApi(_ReplayByReference, IdempotentPost, ApiView):
    """Close an appeal with an outcome and a reason."""

    permission_classes = [IsHandler]

    class InputSerializer(serializers.Serializer):
        outcome = serializers.ChoiceField(choices=OPERATOR_OUTCOMES, help_text="As the console's close form offers.")
        reason = TextField(max_length=200)

    @extend_schema(request=InputSerializer, responses=AppealSummarySerializer)
    def post(self, request, reference: str):
        appeal = _appeal_by_reference(request, reference)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        appeal = services.appeal_close(appeal=appeal, actor=request.user, strict=True, **data.validated_data)
        return Response(AppealSummarySerializer(appeal).data)


class AppealContactCreateApi(_ReplayByReference, IdempotentPost, ApiView):
    """Log a call with the resident (direction, outcome, note)."""

    permission_classes = [IsHandler]

    class InputSerializer(serializers.Serializer):
        direction = serializers.ChoiceField(choices=AppealContact.Direction.choices)
        outcome = serializers.ChoiceField(choices=AppealContact.Outcome.choices)
        note = TextField(required=False, allow_blank=True, max_length=1000, multiline=True)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        at = serializers.DateTimeField()
        direction = serializers.CharField()
        outcome = serializers.CharField()
        note = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request, reference: str):
        appeal = _appeal_by_reference(request, reference)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contact = services.appeal_contact_log(appeal=appeal, actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(contact).data, status=status.HTTP_201_CREATED)


class EvidenceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    content_type = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    size_bytes = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    def get_file_url(self, obj) -> str:
        return reverse("appeals:api-evidence-file", kwargs={"pk": obj.pk})

    def get_thumbnail_url(self, obj) -> str:
        return reverse("appeals:evidence-thumb", kwargs={"pk": obj.pk})


class AppealEvidenceListApi(ApiView):
    """Screenshots of one appeal, for those who may see them (see selectors.can_see_evidence)."""

    permission_classes = [IsStaffRole]

    @extend_schema(responses=EvidenceOutputSerializer(many=True))
    def get(self, request, reference: str):
        appeal = _appeal_by_reference(request, reference)
        if not selectors.can_see_evidence(request.user, appeal):
            raise PermissionDenied
        return Response(EvidenceOutputSerializer(selectors.appeal_evidence(appeal), many=True).data)


class AppealEvidenceUploadApi(IdempotentPost, ApiView):
    """Attach a screenshot (multipart `file`), validated and stripped like the resident's uploads."""

    permission_classes = [IsHandler]
    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()

    def replay_check(self, request, answer, reference: str) -> None:
        if not selectors.can_see_evidence(request.user, _appeal_by_reference(request, reference, replay=True)):
            raise PermissionDenied

    @extend_schema(request={"multipart/form-data": InputSerializer}, responses={201: EvidenceOutputSerializer})
    def post(self, request, reference: str):
        appeal = _appeal_by_reference(request, reference)
        if not selectors.can_see_evidence(request.user, appeal):
            raise PermissionDenied
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        evidence = services.appeal_evidence_add(appeal=appeal, upload=data.validated_data["file"], actor=request.user)
        return Response(EvidenceOutputSerializer(evidence).data, status=status.HTTP_201_CREATED)


class EvidenceFileApi(ApiView):
    """The picture itself (token or session auth), same check as the console's view."""

    permission_classes = [IsStaffRole]

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        evidence = selectors.evidence_access(user=request.user, pk=pk, where="api", head=request.method == "HEAD")
        return private_file_response(evidence.file, content_type=evidence.content_type,
                                     filename=f'evidence-{evidence.pk}.{evidence.file.name.rsplit(".", 1)[-1]}')
