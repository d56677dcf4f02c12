"""URLs of the appeals app (pages under its own prefix, API under api/v1/appeals/)."""

urlpatterns: list = []
