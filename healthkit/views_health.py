"""Load-balancer probes: `/healthz` (the process answers) and `/readyz` (it can do its work:
database, broker, cache reachable, every migration applied). Anonymous callers get only
"ok" / "unavailable"; the name of the failing check is shown to administrators only, and no
error text (hosts, credentials) ever leaves the server: it is logged."""

import logging
import time

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)
_migrated = False  # once all are applied in this process they stay applied (a release restarts it)


def _database() -> None:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT 1")


def _migrations() -> None:
    global _migrated
    if _migrated:
        return
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise RuntimeError("unapplied migrations")
    _migrated = True


def _broker() -> None:
    from healthkit.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _cache() -> None:
    key = "readyz:probe"
    cache.set(key, "1", 10)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not keep a value")


CHECKS = {"database": _database, "migrations": _migrations, "broker": _broker, "cache": _cache}


def _may_see_details(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and (user.is_superuser or getattr(user, "role", "") == "administrator"))


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    failed: list[str] = []
    for name, check in CHECKS.items():
        if name == "migrations" and "database" in failed:
            failed.append(name)
            continue
        started = time.monotonic()
        try:
            check()
        except Exception:  # any failure means "not ready"; the reason goes to the log only
            logger.warning("readiness check %s failed after %.2f s", name, time.monotonic() - started, exc_info=True)
            failed.append(name)
    body: dict = {"status": "unavailable" if failed else "ok"}
    if _may_see_details(request):
        body["checks"] = {name: name not in failed for name in CHECKS}
    return JsonResponse(body, status=503 if failed else 200)
