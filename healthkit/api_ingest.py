"""Ingest API for integration clients (token-authenticated, role `integration`).

One class per endpoint. Records are validated by healthkit.ingest in plain Python (fast, and
reported by index); the nested `RecordSerializer` of each endpoint documents the record format
in the OpenAPI schema only.
"""

from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from healthkit import ingest
from healthkit.api import ApiView
from healthkit.auth import ApiTokenAuthentication
from healthkit.errors import ApplicationError
from healthkit.inputs import RecordsJSONParser, TextField
from healthkit.models import IngestBatch
from healthkit.permissions import IsIntegration

# The record serializers below only document what healthkit.ingest checks (in plain Python), so
# each says what it does: an optional field may be left out or null, an optional text also empty
# (all: none); a client's key (record id, lab, sample id) or reason may be a JSON integer too.
# tests/test_schema_agrees_with_ingest.py holds each field to it.


class KeyText(serializers.CharField):
    """Text that ingest also takes as a JSON integer (a sample id a lab sends as a number)."""


class KeyTextSchema(OpenApiSerializerFieldExtension):
    target_class = KeyText

    def map_serializer_field(self, auto_schema, direction):
        text = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        return {"oneOf": [text, {"type": "integer"}]}


def optional_name() -> serializers.CharField:
    return serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=64,
                                 help_text="Registers an unknown resident (empty or null: none).")


def record_id() -> KeyText:
    return KeyText(required=False, allow_blank=True, allow_null=True, max_length=64,
                   help_text="Client record id (idempotency); empty or null: none, the record's content is its key.")


def batch_id() -> serializers.CharField:
    # TextField: its schema carries the pattern ingest.parse_batch_id enforces (no control characters)
    return TextField(required=False, allow_null=True, min_length=1, max_length=80,
                                 help_text="Client batch id: the same batch sent again gets the stored answer. "
                                           "Null: none; never empty.")


class _Resident(serializers.Serializer):
    id_number = serializers.CharField(min_length=18, max_length=18, help_text="National ID number (18 characters).")
    name = optional_name()
    record_id = record_id()


class IngestOutputSerializer(serializers.Serializer):
    kind = serializers.CharField()
    batch_id = serializers.CharField(allow_null=True)
    received = serializers.IntegerField()
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Already on record (a retry); not an error.")
    corrected = serializers.IntegerField(
        help_text="Test results the lab sent again (same lab, sample id and resident) with another result: the "
                  "correction is stored and supersedes the earlier result, which is kept as history. Also an "
                  "original resulted before the current result (arriving after its correction): kept as "
                  "history, the correction stays current.")
    updated = serializers.IntegerField(
        help_text="Sent again under the same key with newer facts and changed: a stay's end added, "
                  "a quarantine order's end moved.")
    rejected = serializers.ListField(child=serializers.DictField(),
                                     help_text='[{"index": 3, "errors": {"field": "message"}}]')
    replayed = serializers.BooleanField(help_text="This batch id was seen before: stored answer.")


class _IngestApi(ApiView):
    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [IsIntegration]
    # a list of records: only JSON carries it; the records are checked one by one (healthkit.ingest)
    parser_classes = [RecordsJSONParser]
    kind: str = ""
    feed: str = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.feed = cls.kind  # each ingest kind is the feed of the same name (User.Feed)

    def post(self, request):
        data = request.data
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise ApplicationError(_("Send a JSON object with a `records` list."))
        batch_id = ingest.parse_batch_id(data)
        result = ingest.ingest(kind=self.kind, records=data["records"], client=request.user,
                               batch_id=batch_id)
        # The service's answer is already plain JSON types in the documented shape: sent as it is,
        # not copied field by field through IngestOutputSerializer (the schema's declaration),
        # which walked every rejected record's errors again.
        return Response(result.as_response())


def _rename_from(serializer: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """`from` is a Python keyword: declare `from_`, publish it as `from` in the schema."""
    serializer._declared_fields["from"] = serializer._declared_fields.pop("from_")
    return serializer


def _input(record_serializer: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    return type(name, (serializers.Serializer,), {
        "batch_id": batch_id(),
        "records": serializers.ListField(child=record_serializer(), max_length=ingest.MAX_RECORDS,
                                         help_text="At most 10,000; bad records are reported by index."),
    })


class TestResultIngestApi(_IngestApi):
    """Nucleic-acid test results (idempotent per lab + sample id + resident)."""

    kind = IngestBatch.Kind.TEST_RESULTS

    class RecordSerializer(_Resident):
        record_id = None  # a result's key is its lab, sample id and resident
        lab = KeyText(max_length=64)
        sample_id = KeyText(max_length=64)
        sampled_at = serializers.DateTimeField()
        resulted_at = serializers.DateTimeField()
        result = serializers.ChoiceField(choices=["negative", "positive"])
        from_other_province = serializers.BooleanField(required=False, allow_null=True)

    InputSerializer = _input(RecordSerializer, "TestResultIngestInput")

    @extend_schema(request=InputSerializer, responses=IngestOutputSerializer)
    def post(self, request):
        return super().post(request)


class ArrivalIngestApi(_IngestApi):
    """Arrivals into the city (type-4 trigger)."""

    kind = IngestBatch.Kind.ARRIVALS

    class RecordSerializer(_Resident):
        arrived_at = serializers.DateTimeField()
        from_county = serializers.CharField(min_length=6, max_length=6, help_text="6-digit county code")

    InputSerializer = _input(RecordSerializer, "ArrivalIngestInput")

    @extend_schema(request=InputSerializer, responses=IngestOutputSerializer)
    def post(self, request):
        return super().post(request)


class StayIngestApi(_IngestApi):
    """Stays outside the city (types 1 and 5)."""

    kind = IngestBatch.Kind.STAYS

    class RecordSerializer(_Resident):
        county = serializers.CharField(min_length=6, max_length=6, help_text="6-digit county code")
        from_ = serializers.DateTimeField()
        to = serializers.DateTimeField(required=False, allow_null=True)
        border_port = serializers.BooleanField(required=False, allow_null=True)

    RecordSerializer = _rename_from(RecordSerializer)
    InputSerializer = _input(RecordSerializer, "StayIngestInput")

    @extend_schema(request=InputSerializer, responses=IngestOutputSerializer)
    def post(self, request):
        return super().post(request)


class LocalCaseIngestApi(_IngestApi):
    """Local cases reported per county (rule 1)."""

    kind = IngestBatch.Kind.LOCAL_CASES

    class RecordSerializer(serializers.Serializer):
        county = serializers.CharField(min_length=6, max_length=6, help_text="6-digit county code")
        date = serializers.DateField(required=False, allow_null=True, help_text="or reported_at (date-time), not both")
        reported_at = serializers.DateTimeField(required=False, allow_null=True)
        record_id = record_id()

    InputSerializer = _input(RecordSerializer, "LocalCaseIngestInput")

    @extend_schema(request=InputSerializer, responses=IngestOutputSerializer)
    def post(self, request):
        return super().post(request)


class QuarantineOrderIngestApi(_IngestApi):
    """Entry quarantine orders (type 2)."""

    kind = IngestBatch.Kind.QUARANTINE_ORDERS

    class RecordSerializer(_Resident):
        from_ = serializers.DateTimeField()
        to = serializers.DateTimeField()

    RecordSerializer = _rename_from(RecordSerializer)
    InputSerializer = _input(RecordSerializer, "QuarantineOrderIngestInput")

    @extend_schema(request=InputSerializer, responses=IngestOutputSerializer)
    def post(self, request):
        return super().post(request)


class MedicalEventIngestApi(_IngestApi):
    """Purchases of the four kinds of drugs and clinic visits with one of the 11 symptoms."""

    kind = IngestBatch.Kind.MEDICAL_EVENTS

    class RecordSerializer(_Resident):
        kind = serializers.ChoiceField(choices=["drug_purchase", "clinic_visit"])
        category = serializers.ChoiceField(choices=list(ingest.DRUG_CATEGORIES), required=False, allow_null=True,
                                           help_text="Required for a drug purchase.")
        symptom = serializers.ChoiceField(choices=list(ingest.SYMPTOMS), required=False, allow_null=True,
                                          help_text="Required for a clinic visit.")
        occurred_at = serializers.DateTimeField()

    InputSerializer = _input(RecordSerializer, "MedicalEventIngestInput")

    @extend_schema(request=InputSerializer, responses=IngestOutputSerializer)
    def post(self, request):
        return super().post(request)


class PopupAssignmentIngestApi(_IngestApi):
    """Upstream popup assignments (type 3 from the big-data match)."""

    kind = IngestBatch.Kind.POPUP_ASSIGNMENTS

    class RecordSerializer(_Resident):
        popup_type = serializers.ChoiceField(choices=[3])
        reason = KeyText(max_length=200)
        assigned_at = serializers.DateTimeField()

    InputSerializer = _input(RecordSerializer, "PopupAssignmentIngestInput")

    @extend_schema(request=InputSerializer, responses=IngestOutputSerializer)
    def post(self, request):
        return super().post(request)
