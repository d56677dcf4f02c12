"""Views of community clearance: the resident's link page and the community worker console."""

from django.http import HttpResponse
from django.views import View


class ResidentLinkView(View):
    def get(self, request, token: str):
        return HttpResponse(status=404)
