"""URLs of community clearance (worker console, resident confirmation links)."""

from django.urls import path

from appeals.clearance import api, views

app_name = "clearance"

urlpatterns = [
    # The resident's one-time link: an opaque signed token, nothing personal.
    path("clearance/r/<str:token>/", views.ResidentLinkView.as_view(), name="link"),
    path("console/clearance/", views.WorklistView.as_view(), name="worklist"),
    path("console/clearance/worklist.csv", views.WorklistCsvView.as_view(), name="worklist-csv"),
    path("console/clearance/checkpoint/", views.CheckpointView.as_view(), name="checkpoint"),
    path("console/clearance/<int:pk>/", views.TaskDetailView.as_view(), name="task"),
    path("console/clearance/<int:pk>/<slug:action>/", views.TaskActionView.as_view(), name="task-action"),
    # REST API (same scoping and services as the console).
    path("api/v1/clearance/tasks/", api.ClearanceTaskListApi.as_view(), name="api-list"),
    path("api/v1/clearance/tasks/<int:pk>/", api.ClearanceTaskDetailApi.as_view(), name="api-detail"),
    path("api/v1/clearance/tasks/<int:pk>/decision/", api.ClearanceTaskDecisionApi.as_view(), name="api-decision"),
    path("api/v1/clearance/tasks/<int:pk>/investigation/", api.ClearanceTaskInvestigationApi.as_view(),
         name="api-investigation"),
]
