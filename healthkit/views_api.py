"""Read API of the popup core."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from communities.models import User
from healthkit.api import ApiView
from healthkit.auth import ApiTokenAuthentication
from healthkit.inputs import InstantField, StrictJSONParser, TextField
from healthkit.permissions import IsIntegration, IsStaffRole
from healthkit.services import health_code_lookup
from healthkit.sms import MAX_RECEIPTS, sms_receipts_record


class HealthCodeApi(ApiView):
    """Health code of one resident, by exact ID number (POST body: never in the URL). A reason is
    required, each account has a daily cap (HEALTH_CODE_LOOKUPS_PER_DAY, 429 beyond it) besides
    the per-minute throttle, and every look-up (hit or miss) is audited with its reason."""

    permission_classes = [IsStaffRole]
    # Per user: a look-up by ID number is what the 2020 proxy look-up leak abused (DOMAIN.md).
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "health_code"

    class InputSerializer(serializers.Serializer):
        id_number = TextField(max_length=32)
        reason = TextField(max_length=200, help_text="Why you need this person's health code (audited).")
        at = InstantField(required=False)

    class OutputSerializer(serializers.Serializer):
        resident = serializers.CharField()
        code = serializers.CharField()
        active_popups = serializers.ListField(child=serializers.IntegerField())
        reasons = serializers.ListField(child=serializers.CharField())

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # LookupCapReached is a RetryLater: 429 with Retry-After (healthkit.api.exception_handler)
        resident, code = health_code_lookup(actor=request.user, id_number=data.validated_data["id_number"],
                                            reason=data.validated_data["reason"],
                                            at=data.validated_data.get("at"))
        return Response(self.OutputSerializer({
            "resident": resident.masked, "code": code.color,
            "active_popups": code.popup_types, "reasons": code.reasons,
        }).data)


class _SmsReceiptSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=64, help_text="The gateway's message id (returned when sending).")
    status = serializers.ChoiceField(choices=["delivered", "undelivered"])
    at = serializers.DateTimeField(required=False, help_text="When the handset took it (or the gateway gave up).")
    error = serializers.CharField(required=False, max_length=200, help_text="The gateway's reason, if undelivered.")


class SmsReceiptApi(ApiView):
    """Delivery receipts from the SMS gateway (token of an integration client): each message
    sent moves to delivered or not delivered, so staff see whether the resident got the link or
    the decision. Bulk and idempotent."""

    authentication_classes = [ApiTokenAuthentication]
    permission_classes = [IsIntegration]
    feed = User.Feed.SMS_RECEIPTS
    parser_classes = [StrictJSONParser]  # a list of receipts: only JSON carries it

    class InputSerializer(serializers.Serializer):
        receipts = serializers.ListField(child=_SmsReceiptSerializer(), max_length=MAX_RECEIPTS,
                                         help_text="At most 10,000.")

    class OutputSerializer(serializers.Serializer):
        received = serializers.IntegerField()
        recorded = serializers.IntegerField()
        rejected = serializers.ListField(child=serializers.DictField(),
                                         help_text='[{"index": 3, "errors": {"field": "message"}}]')
        not_recorded = serializers.ListField(
            child=serializers.CharField(),
            help_text="Ids with no sent message on record (unknown yet, or already final): send again later "
                      "if they are new; nothing changes otherwise.")

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        return Response(self.OutputSerializer(sms_receipts_record(data.get("receipts"))).data)
