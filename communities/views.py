from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from communities.selectors import community_find


class CommunityFindApi(APIView):
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

    @extend_schema(parameters=[OpenApiParameter("q", str, required=True)], responses=OutputSerializer(many=True))
    def get(self, request):
        matches = community_find(request.query_params.get("q", "")[:200])
        return Response(self.OutputSerializer(matches, many=True).data)
