"""URLs of the appeals app: resident pages under appeals/, console under console/appeals/,
REST API under api/v1/appeals/, Open311 GeoReport v2 under open311/v2/."""

from django.urls import path, re_path, register_converter

from appeals import api, open311, views_console, views_public

app_name = "appeals"


class ReferenceConverter:
    """An appeal's reference in an API path (api.REFERENCE): anything else matches no route, a 404,
    and the OpenAPI schema declares the parameter with this pattern (drf-spectacular reads it)."""

    regex = api.REFERENCE.pattern

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ReferenceConverter, "reference")

FMT = r"\.(?P<fmt>json|xml)$"

urlpatterns = [
    # Resident pages (no personal data in any URL).
    path("appeals/", views_public.StartView.as_view(), name="start"),
    path("appeals/file/", views_public.IdentifyView.as_view(), name="file-identify"),
    path("appeals/file/code/", views_public.VerifyView.as_view(), name="file-verify"),
    path("appeals/file/popup/", views_public.PopupStepView.as_view(), name="file-popup"),
    path("appeals/file/community/", views_public.CommunityStepView.as_view(), name="file-community"),
    path("appeals/file/details/", views_public.DetailsStepView.as_view(), name="file-details"),
    path("appeals/file/details/picture/<int:pk>/", views_public.DraftThumbView.as_view(), name="file-draft-thumb"),
    path("appeals/file/check/", views_public.CheckView.as_view(), name="file-check"),
    path("appeals/file/done/", views_public.DoneView.as_view(), name="file-done"),
    path("appeals/status/", views_public.StatusView.as_view(), name="status"),
    path("appeals/evidence-link/<str:token>/", views_public.EvidenceLinkView.as_view(), name="evidence-link"),
    # Staff console.
    path("console/appeals/", views_console.QueueView.as_view(), name="queue"),
    path("console/appeals/phone/", views_console.PhoneEntryView.as_view(), name="phone-entry"),
    path("console/appeals/<int:pk>/", views_console.TicketView.as_view(), name="ticket"),
    path("console/appeals/<int:pk>/<slug:action>/", views_console.TicketActionView.as_view(), name="ticket-action"),
    path("console/appeals/evidence/<int:pk>/", views_console.EvidenceFileView.as_view(), name="evidence-file"),
    path("console/appeals/evidence/<int:pk>/thumb/", views_console.EvidenceThumbView.as_view(), name="evidence-thumb"),
    # REST API.
    path("api/v1/appeals/", api.AppealListApi.as_view(), name="api-list"),
    path("api/v1/appeals/search/", api.AppealSearchApi.as_view(), name="api-search"),
    path("api/v1/appeals/create/", api.AppealCreateApi.as_view(), name="api-create"),
    path("api/v1/appeals/evidence/<int:pk>/file/", api.EvidenceFileApi.as_view(), name="api-evidence-file"),
    path("api/v1/appeals/<reference:reference>/", api.AppealDetailApi.as_view(), name="api-detail"),
    path("api/v1/appeals/<reference:reference>/assign/", api.AppealAssignApi.as_view(), name="api-assign"),
    path("api/v1/appeals/<reference:reference>/route/", api.AppealRouteApi.as_view(), name="api-route"),
    path("api/v1/appeals/<reference:reference>/close/", api.AppealCloseApi.as_view(), name="api-close"),
    path("api/v1/appeals/<reference:reference>/contacts/", api.AppealContactCreateApi.as_view(), name="api-contacts"),
    path("api/v1/appeals/<reference:reference>/evidence/", api.AppealEvidenceListApi.as_view(), name="api-evidence"),
    path("api/v1/appeals/<reference:reference>/evidence/upload/", api.AppealEvidenceUploadApi.as_view(),
         name="api-evidence-upload"),
    # Open311 GeoReport v2.
    re_path(r"^open311/v2/services" + FMT, open311.ServicesView.as_view(), name="open311-services"),
    re_path(r"^open311/v2/services/(?P<code>[a-z_]+)" + FMT, open311.ServiceDefinitionView.as_view(),
            name="open311-service"),
    re_path(r"^open311/v2/requests" + FMT, open311.RequestsView.as_view(), name="open311-requests"),
    re_path(r"^open311/v2/requests/(?P<reference>[0-9A-Za-z-]+)" + FMT, open311.RequestDetailView.as_view(),
            name="open311-request"),
    # Last: any other path under open311/v2/ answers the Open311 error list, not an HTML 404.
    re_path(r"^open311/v2/(?P<path>.*)$", open311.NotFoundView.as_view(), name="open311-not-found"),
]
