"""URLs of community clearance (worker console, resident confirmation links)."""

from django.urls import path

from appeals.clearance import views

app_name = "clearance"

urlpatterns = [
    # The resident's one-time link: an opaque signed token, nothing personal.
    path("clearance/r/<str:token>/", views.ResidentLinkView.as_view(), name="link"),
    path("console/clearance/", views.WorklistView.as_view(), name="worklist"),
    path("console/clearance/worklist.csv", views.WorklistCsvView.as_view(), name="worklist-csv"),
    path("console/clearance/checkpoint/", views.CheckpointView.as_view(), name="checkpoint"),
    path("console/clearance/<int:pk>/", views.TaskDetailView.as_view(), name="task"),
    path("console/clearance/<int:pk>/<slug:action>/", views.TaskActionView.as_view(), name="task-action"),
]
