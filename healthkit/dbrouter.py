"""Read replica routing, switched on by REPLICA_DATABASE_URL (settings; docs/deploy.md).

Only what is marked goes to the replica: code that can live with a second or two of lag (the
supervisor dashboard, CSV/XLSX exports, consoles' long lists) reads through
`replica_reads()` or `.using(read_alias())`. Everything else, and every query inside a
transaction, stays on the primary, so a write is never followed by a stale read of itself.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import connections

_use_replica: ContextVar[bool] = ContextVar("use_replica", default=False)


def read_alias() -> str:
    """The replica alias if one is configured and the primary is not inside a transaction, else the primary."""
    if "replica" in settings.DATABASES and not connections["default"].in_atomic_block:
        return "replica"
    return "default"


@contextmanager
def replica_reads() -> Iterator[None]:
    """Within this block, model reads go to the replica (when configured)."""
    token = _use_replica.set(True)
    try:
        yield
    finally:
        _use_replica.reset(token)


class ReplicaRouter:
    def db_for_read(self, model, **hints) -> str:
        return read_alias() if _use_replica.get() else "default"

    def db_for_write(self, model, **hints) -> str:
        return "default"

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return db == "default"
