from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from communities.selectors import community_find
from healthkit.api import ApiView
from healthkit.inputs import TextField


class CommunityFindApi(ApiView):
    """Likely communities for an address or compound name (public: residents use it when filing)."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle, UserRateThrottle]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="community.pk")
        code = serializers.CharField(source="community.code")
        name = serializers.CharField(source="community.name")
        street = serializers.CharField(source="community.street.name")
        district = serializers.CharField(source="community.street.district.name")
        matched = serializers.CharField()
        score = serializers.FloatField()

    class QuerySerializer(serializers.Serializer):
        q = TextField(required=False, allow_blank=True,
                      help_text="An address or compound name; its first 200 characters are read. Left out, empty "
                                "or shorter than 2 characters: no matches (an empty list).")

    query_serializer = QuerySerializer

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request):
        matches = community_find(self.query.get("q", "")[:200])
        return Response(self.OutputSerializer(matches, many=True).data)
