"""Integration API of the popup core (signals in, health codes out). Mounted at /api/v1/."""

from django.urls import path

from healthkit import api_ingest, views_api

urlpatterns = [
    path("residents/health-code/", views_api.HealthCodeApi.as_view(), name="api-health-code"),
    path("sms/receipts/", views_api.SmsReceiptApi.as_view(), name="api-sms-receipts"),
    path("ingest/test-results/", api_ingest.TestResultIngestApi.as_view(), name="api-ingest-test-results"),
    path("ingest/arrivals/", api_ingest.ArrivalIngestApi.as_view(), name="api-ingest-arrivals"),
    path("ingest/stays/", api_ingest.StayIngestApi.as_view(), name="api-ingest-stays"),
    path("ingest/local-cases/", api_ingest.LocalCaseIngestApi.as_view(), name="api-ingest-local-cases"),
    path("ingest/quarantine-orders/", api_ingest.QuarantineOrderIngestApi.as_view(),
         name="api-ingest-quarantine-orders"),
    path("ingest/medical-events/", api_ingest.MedicalEventIngestApi.as_view(), name="api-ingest-medical-events"),
    path("ingest/popup-assignments/", api_ingest.PopupAssignmentIngestApi.as_view(),
         name="api-ingest-popup-assignments"),
]
