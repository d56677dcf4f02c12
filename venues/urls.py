"""URLs of the venues app (pages under its own prefix, API under api/v1/venues/)."""

urlpatterns: list = []
