"""URLs of the supervisor's dashboard and the exports."""

from django.urls import path

from appeals.oversight import views, views_export

app_name = "oversight"

urlpatterns = [
    path("console/dashboard/", views.DashboardView.as_view(), name="dashboard"),
    path("console/dashboard/figures/", views_export.SummaryExportView.as_view(), name="export-summary"),
    path("console/exports/appeals/", views_export.AppealsExportView.as_view(), name="export-appeals"),
    path("console/exports/clearance-tasks/", views_export.TasksExportView.as_view(), name="export-tasks"),
    path("console/exports/popups/", views_export.PopupsExportView.as_view(), name="export-popups"),
]
