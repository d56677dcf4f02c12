"""URLs of the venues app (pages under console/venues/, API under api/v1/venues/)."""

from django.urls import include, path

from venues import api, views

app_name = "venues"

api_patterns = [
    path("scans/", api.ScanIngestApi.as_view(), name="api-scans"),
    path("", api.VenueListApi.as_view(), name="api-venue-list"),
    path("create/", api.VenueCreateApi.as_view(), name="api-venue-create"),
    path("risk-windows/", api.RiskWindowListApi.as_view(), name="api-window-list"),
    path("risk-windows/create/", api.RiskWindowCreateApi.as_view(), name="api-window-create"),
    path("risk-windows/<int:pk>/", api.RiskWindowDetailApi.as_view(), name="api-window-detail"),
    path("risk-windows/<int:pk>/correct/", api.RiskWindowCorrectApi.as_view(), name="api-window-correct"),
    path("risk-windows/<int:pk>/withdraw/", api.RiskWindowWithdrawApi.as_view(), name="api-window-withdraw"),
]

urlpatterns = [
    path("api/v1/venues/", include(api_patterns)),
    path("console/venues/", views.VenueListView.as_view(), name="venue-list"),
    path("console/venues/<int:pk>/poster.<str:fmt>", views.VenuePosterView.as_view(), name="venue-poster"),
    path("console/venues/<int:pk>/register/", views.VenueRegisterView.as_view(), name="venue-register"),
    path("console/venues/<int:pk>/register.csv", views.VenueRegisterExportView.as_view(),
         name="venue-register-export"),
    path("console/venues/risk-windows/", views.RiskWindowListView.as_view(), name="window-list"),
    path("console/venues/risk-windows/<int:pk>/", views.RiskWindowDetailView.as_view(), name="window-detail"),
]
