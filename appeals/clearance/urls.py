"""URLs of community clearance (worker console, resident confirmation links)."""

from django.urls import path

from appeals.clearance import views

app_name = "clearance"

urlpatterns = [
    # The resident's one-time link: an opaque signed token, nothing personal.
    path("clearance/r/<str:token>/", views.ResidentLinkView.as_view(), name="link"),
]
