"""REST API of the venues app (mounted at /api/v1/venues/). One class per endpoint.

- scans: bulk idempotent ingest for integration clients (token, role `integration`);
- venues: list (scoped: supervisors all, a venue manager their own), create (supervisors);
- risk windows: list / create / detail / correct / withdraw (supervisors and administrators).
"""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from communities.models import Community, User
from healthkit.api import ApiView, IdempotentPost
from healthkit.api_ingest import IngestOutputSerializer, batch_id, optional_name
from healthkit.auth import ApiTokenAuthentication
from healthkit.errors import ApplicationError
from healthkit.ingest import MAX_RECORDS, parse_batch_id
from healthkit.inputs import InstantField, RecordsJSONParser, TextField
from healthkit.permissions import IsIntegration, role_permission
from venues import ingest, selectors, services
from venues.models import RiskWindow, Venue

IsSupervising = role_permission(*selectors.SUPERVISING)
CanSeeVenues = role_permission(*selectors.SUPERVISING, User.Role.VENUE_MANAGER)


class _ScanRecord(serializers.Serializer):
    """One scan; validated by venues.ingest (bad records reported by index), documented here."""

    id_number = serializers.CharField(min_length=18, max_length=18, help_text="National ID number (18 characters).")
    name = optional_name()
    venue = serializers.CharField(max_length=16, help_text="The venue code printed on its poster.")
    scanned_at = serializers.DateTimeField(help_text="ISO 8601 with an offset.")


class ScanIngestApi(ApiView):
    """Venue scans in bulk (≤ 10 000 per request). Idempotent per scan (venue, resident, time)
    and per `batch_id`; bad records are reported by index and the rest are stored."""

    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [IsIntegration]
    feed = User.Feed.VENUE_SCANS
    # a list of records: only JSON carries it; the records are checked one by one (venues.ingest)
    parser_classes = [RecordsJSONParser]

    RecordSerializer = _ScanRecord

    class InputSerializer(serializers.Serializer):
        batch_id = batch_id()
        records = serializers.ListField(child=_ScanRecord(), max_length=MAX_RECORDS,
                                        help_text="At most 10,000; bad records are reported by index.")

    @extend_schema(request=InputSerializer, responses=IngestOutputSerializer)
    def post(self, request):
        data = request.data
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise ApplicationError(_("Send a JSON object with a `records` list."))
        batch_id = parse_batch_id(data)
        result = ingest.scans_ingest(records=data["records"], client=request.user, batch_id=batch_id)
        return Response(IngestOutputSerializer(result.as_response()).data)


class _VenueOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    address = serializers.CharField()
    community = serializers.IntegerField(source="community_id", allow_null=True)
    district = serializers.IntegerField(source="district_id", allow_null=True)
    active = serializers.BooleanField()


class _ById(CursorPagination):
    ordering = "-id"


class _WindowPages(CursorPagination):
    ordering = ("-starts_at", "-id")


class VenueListApi(ApiView):
    """Venues the caller may see (a venue manager: only their own)."""

    permission_classes = [CanSeeVenues]
    pagination_class = _ById  # also tells the schema the list is paged
    OutputSerializer = _VenueOutput

    @extend_schema(responses=_VenueOutput(many=True))
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.venues_visible_to(request.user), request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class VenueCreateApi(IdempotentPost, ApiView):
    """Register a venue (its code is generated and never changes)."""

    permission_classes = [IsSupervising]

    class InputSerializer(serializers.Serializer):
        name = TextField(max_length=120)
        kind = serializers.ChoiceField(choices=Venue.Kind.choices)
        address = TextField(max_length=200, required=False, allow_blank=True)
        community = serializers.PrimaryKeyRelatedField(queryset=Community.objects.all())
        managers = serializers.PrimaryKeyRelatedField(
            queryset=User.objects.filter(role=User.Role.VENUE_MANAGER), many=True, required=False)

    OutputSerializer = _VenueOutput

    @extend_schema(request=InputSerializer, responses={201: _VenueOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        venue = services.venue_create(**data.validated_data)
        return Response(self.OutputSerializer(venue).data, status=status.HTTP_201_CREATED)


class _WindowOutput(serializers.Serializer):
    id = serializers.IntegerField()
    venue = serializers.IntegerField(source="venue_id")
    venue_code = serializers.CharField(source="venue.code")
    starts_at = serializers.DateTimeField(help_text="Inclusive.")
    ends_at = serializers.DateTimeField(help_text="Exclusive.")
    risk_level = serializers.CharField()
    reason = serializers.CharField()
    state = serializers.CharField()
    version = serializers.IntegerField()
    exposure_due = serializers.BooleanField(help_text="The exposure job has not yet run for this version.")
    exposure_count = serializers.IntegerField(required=False, help_text="Popups raised (detail only).")


class _WindowInput(serializers.Serializer):
    starts_at = InstantField(help_text="Inclusive.")
    ends_at = InstantField(help_text="Exclusive.")
    risk_level = serializers.ChoiceField(choices=RiskWindow.Level.choices)
    reason = TextField(max_length=200)


class RiskWindowListApi(ApiView):
    """Risk windows, newest first; `venue` and `state` filter."""

    permission_classes = [IsSupervising]
    pagination_class = _WindowPages  # also tells the schema the list is paged
    OutputSerializer = _WindowOutput

    class FilterSerializer(serializers.Serializer):
        venue = serializers.IntegerField(required=False, min_value=1, help_text="A venue's id (an unknown one: 404).")
        state = serializers.ChoiceField(choices=RiskWindow.State.choices, required=False)

    query_serializer = FilterSerializer

    @extend_schema(responses=_WindowOutput(many=True))
    def get(self, request):
        venue = get_object_or_404(Venue, pk=self.query["venue"]) if "venue" in self.query else None
        qs = selectors.risk_windows(venue=venue, state=self.query.get("state"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class RiskWindowCreateApi(IdempotentPost, ApiView):
    """Mark a venue as a risk point over [starts_at, ends_at); popups follow asynchronously."""

    permission_classes = [IsSupervising]

    class InputSerializer(_WindowInput):
        venue = serializers.PrimaryKeyRelatedField(queryset=Venue.objects.all())

    OutputSerializer = _WindowOutput

    @extend_schema(request=InputSerializer, responses={201: _WindowOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        window = services.risk_window_create(actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(window).data, status=status.HTTP_201_CREATED)


class RiskWindowDetailApi(ApiView):
    """One risk window, with the number of popups it raised."""

    permission_classes = [IsSupervising]
    OutputSerializer = _WindowOutput

    @extend_schema(responses=_WindowOutput)
    def get(self, request, pk: int):
        window = get_object_or_404(RiskWindow.objects.select_related("venue"), pk=pk)
        window.exposure_count = window.exposures.count()
        return Response(self.OutputSerializer(window).data)


class RiskWindowCorrectApi(IdempotentPost, ApiView):
    """Correct times, level or reason (a new version); the popups raised follow."""

    permission_classes = [IsSupervising]

    class InputSerializer(_WindowInput):
        correction = TextField(max_length=200, help_text="Why the window is corrected.")

    OutputSerializer = _WindowOutput

    def replay_check(self, request, answer, pk: int) -> None:
        get_object_or_404(RiskWindow, pk=pk)

    @extend_schema(request=InputSerializer, responses=_WindowOutput)
    def post(self, request, pk: int):
        window = get_object_or_404(RiskWindow.objects.select_related("venue"), pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        window = services.risk_window_correct(window=window, actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(window).data)


class RiskWindowWithdrawApi(IdempotentPost, ApiView):
    """Withdraw a window marked in error; untouched popups are withdrawn, others flagged."""

    permission_classes = [IsSupervising]

    class InputSerializer(serializers.Serializer):
        reason = TextField(max_length=200)

    OutputSerializer = _WindowOutput

    def replay_check(self, request, answer, pk: int) -> None:
        get_object_or_404(RiskWindow, pk=pk)

    @extend_schema(request=InputSerializer, responses=_WindowOutput)
    def post(self, request, pk: int):
        window = get_object_or_404(RiskWindow.objects.select_related("venue"), pk=pk)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        window = services.risk_window_withdraw(window=window, actor=request.user,
                                               reason=data.validated_data["reason"])
        return Response(self.OutputSerializer(window).data)
