"""URLs of community clearance (worker console, resident confirmation links)."""

urlpatterns: list = []
