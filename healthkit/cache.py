"""The cache when Redis cannot be reached: an empty cache that keeps nothing, not a 500.

What the product keeps in the cache is of two kinds. Most of it guards or speeds things up: rate
limits and API throttles (fixed windows), drop-down options, the readiness probe's value. With
Redis down (a restart, a failover, a full network path) those must not take the console, the
resident pages and the labs' ingest down with them: a read is a miss, a write keeps nothing, and an
increment finds no counter, so a limit lets the request through (fail open) and an option list is
read from the database. The rest must be kept to mean anything (a one-time code's challenge): it is
written with `add`, whose False says it was not, and the caller refuses politely
(appeals.services.identity_code_send).

Each call waits at most the socket timeouts settings give (CACHE_SOCKET_TIMEOUT), and the
failure is logged at most once every LOG_EVERY seconds per process, by class only (a key holds
only keyed hashes, but a message may quote a host)."""

import logging
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis import exceptions as redis_errors

logger = logging.getLogger(__name__)
LOG_EVERY = 10.0
UNREACHABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.ReadOnlyError)
_last_logged = 0.0


def _unreachable(operation: str, exc: BaseException) -> None:
    global _last_logged
    now = time.monotonic()
    if now - _last_logged >= LOG_EVERY:
        _last_logged = now
        logger.warning("cache unavailable: %s on %s; serving without it", type(exc).__name__, operation)


class ResilientRedisCache(RedisCache):
    """Django's Redis cache, empty and forgetful while Redis cannot be reached (module docstring)."""

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        try:
            return super().add(key, value, timeout, version)
        except UNREACHABLE as exc:
            _unreachable("add", exc)
            return False

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except UNREACHABLE as exc:
            _unreachable("get", exc)
            return default

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        try:
            super().set(key, value, timeout, version)
        except UNREACHABLE as exc:
            _unreachable("set", exc)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        try:
            return super().touch(key, timeout, version)
        except UNREACHABLE as exc:
            _unreachable("touch", exc)
            return False

    def delete(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().delete(key, version)
        except UNREACHABLE as exc:
            _unreachable("delete", exc)
            return False

    def get_many(self, keys: Any, version: int | None = None) -> dict:
        try:
            return super().get_many(keys, version)
        except UNREACHABLE as exc:
            _unreachable("get_many", exc)
            return {}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().has_key(key, version)
        except UNREACHABLE as exc:
            _unreachable("has_key", exc)
            return False

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return super().incr(key, delta, version)
        except UNREACHABLE as exc:
            _unreachable("incr", exc)
            raise ValueError("Key not found: the cache is unavailable") from None  # as for a missing key

    def set_many(self, data: dict, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list:
        try:
            return super().set_many(data, timeout, version)
        except UNREACHABLE as exc:
            _unreachable("set_many", exc)
            return list(data)  # the keys not kept

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        try:
            super().delete_many(keys, version)
        except UNREACHABLE as exc:
            _unreachable("delete_many", exc)

    def clear(self) -> bool:
        try:
            return super().clear()
        except UNREACHABLE as exc:
            _unreachable("clear", exc)
            return False
