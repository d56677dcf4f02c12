"""`.env.example` works as written: every backend it names can be loaded, and its Redis cache
URL gives a working cache (the `redis` package is a dependency)."""

from pathlib import Path

import environ
from django.core.cache.backends.redis import RedisCache
from django.utils.module_loading import import_string

ROOT = Path(__file__).resolve().parent.parent


def example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def test_the_example_cache_url_is_a_working_redis_cache():
    config = environ.Env.cache_url_config(example()["CACHE_URL"])
    assert import_string(config["BACKEND"]) is RedisCache
    cache = RedisCache(config["LOCATION"], {"KEY_PREFIX": "env-example-test"})
    cache.set("probe", {"ok": 1}, timeout=30)
    assert cache.get("probe") == {"ok": 1}
    cache.delete("probe")


def test_the_example_sms_backend_loads():
    assert import_string(example()["SMS_BACKEND"])
