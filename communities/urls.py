from django.urls import path

from communities import views

urlpatterns = [
    path("api/v1/communities/find/", views.CommunityFindApi.as_view(), name="api-community-find"),
]
