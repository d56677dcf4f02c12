"""The OpenAPI schema view (served at /api/schema/, rendered at /api/docs/)."""

import threading

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SCHEMA_KWARGS, SpectacularAPIView


class SchemaView(SpectacularAPIView):
    """drf-spectacular's schema view, one generation at a time per process: its generator keeps
    state on shared objects (the view being inspected, warning counters; upstream issues #1123
    and #1368), so two first requests at once in a threaded server (runserver, gthread workers)
    could mix them up and answer 500. Generation is rare; waiting for the other is cheap."""

    _generating = threading.Lock()

    @extend_schema(**SCHEMA_KWARGS)  # as drf-spectacular's own get: SERVE_INCLUDE_SCHEMA decides
    def get(self, request, *args, **kwargs):
        with self._generating:
            return super().get(request, *args, **kwargs)
