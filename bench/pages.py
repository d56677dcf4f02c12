"""Every staff page, admin changelist and REST list at scale, as each role sees it.

Crawls, as each demo role (admin, supervisor1, operator1, worker1, venue1) through Django's test
client with DEBUG off, every same-site link from "/" and "/console/" (at most --per-shape URLs of
one shape), plus, for the administrator, every registered admin changelist with its filter links, a search,
each column sort, a deep page (?p=5000) and the change form and delete page of its newest object; the REST lists (filters, orderings, the next cursor) and the exports (POSTed,
streamed to the end); with --bulk-actions, the admin's requeue actions on every dead or failed row
("select all"), asked and confirmed, rolled back. For each request it records the wall time, the number of queries and the
slowest query; prints one line per request, then p50 / p95 / max per role and the slowest pages
with their slowest query's EXPLAIN (ANALYZE, BUFFERS).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hk_scale_big .venv/bin/python bench/pages.py --fill
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hk_scale_big .venv/bin/python bench/pages.py

--fill DROPS and re-creates the database named in DATABASE_URL (a benchmark's own only),
migrates it, loads the demo city (`seed_demo --residents 2000`) and adds bench/pages_fill.sql
(about 1 M rows in each big table, set-based, a few minutes), then ANALYZE. Without it the
database is used as it is; the crawl is read-only except for the audit rows the pages
themselves write (views, exports) and sessions.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthkit.settings")
os.environ["DJANGO_DEBUG"] = "false"  # as in production
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["CELERY_BROKER_URL"] = "memory://"

ROLES = ["admin", "supervisor1", "operator1", "worker1", "venue1"]
SKIP = ("/accounts/logout/", "/i18n/", "/admin/logout/", "/static/", "/media/", "/accounts/login/", "/admin/login/")
SLOW_S = 1.0


@dataclass
class Hit:
    role: str
    url: str
    status: int
    seconds: float
    queries: int
    slowest_ms: float
    slowest_sql: str
    slowest_params: tuple | list | None
    rss_mb: float = 0.0
    body_bytes: int = 0


@dataclass
class Recorder:
    """connection.execute_wrapper: every statement's time (DEBUG off keeps no query log)."""

    queries: list = field(default_factory=list)

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((time.perf_counter() - started, sql, params))


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def shape(url: str) -> str:
    path = urlsplit(url).path
    return re.sub(r"\d+", "<n>", path)


def fetch(client, role: str, url: str, data: dict | None = None) -> tuple[Hit, bytes]:
    from django.db import connection

    recorder = Recorder()
    base_rss = rss_mb()
    peak = base_rss
    body = b""
    size = 0
    with connection.execute_wrapper(recorder):
        started = time.perf_counter()
        response = client.post(url, data) if data is not None else client.get(url)
        if getattr(response, "streaming", False):
            for n, chunk in enumerate(response.streaming_content):
                size += len(chunk)
                if n % 2000 == 0:
                    peak = max(peak, rss_mb())
            response.close()
        else:
            body = response.content
            size = len(body)
        seconds = time.perf_counter() - started
    peak = max(peak, rss_mb())
    slowest = max(recorder.queries, default=(0.0, "", None))
    return Hit(role, url if data is None else f"POST {url} {data.get('query', '')}", response.status_code, seconds,
               len(recorder.queries), slowest[0] * 1000, slowest[1], slowest[2], peak - base_rss, size), body


def admin_variants() -> list[str]:
    """Each registered changelist: plain (its filter links are followed from it), a search, each
    column sort, a deep page, and the change form and delete page of its newest object."""
    from django.contrib import admin
    from django.urls import reverse

    urls = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        urls.append(changelist)
        if model_admin.search_fields:
            urls.append(changelist + "?q=%E7%8E%8B")  # 王
            urls.append(changelist + "?q=S000012")
        for i in range(1, len(model_admin.list_display) + 1):
            urls.append(changelist + f"?o={i}")
            urls.append(changelist + f"?o=-{i}")
        urls.append(changelist + "?p=5000")
        newest = model._default_manager.order_by("-pk").values_list("pk", flat=True).first()
        if newest is not None:
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[newest]))
            urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[newest]))
    return urls


def bulk_actions(client) -> None:
    """The admin's requeue actions with "select all" (every dead or failed row of the table),
    asked and then confirmed, each run rolled back so the rows stay as they were."""
    from django.db import connection, transaction

    from healthkit.models import OutboxDelivery, SmsMessage

    for url, model in (("/admin/healthkit/smsmessage/", SmsMessage), ("/admin/healthkit/outboxdelivery/", OutboxDelivery)):
        states = ["dead", "failed"]
        eligible = model.objects.filter(state__in=states).count()
        page = list(model.objects.order_by("-pk").values_list("pk", flat=True)[:100])
        for step, extra in (("asked", {"index": "0"}), ("confirmed", {"confirm": "yes"})):
            with transaction.atomic():
                recorder = Recorder()
                with connection.execute_wrapper(recorder):
                    started = time.perf_counter()
                    response = client.post(url, {"action": "requeue", "_selected_action": page, "select_across": "1",
                                                 **extra})
                    seconds = time.perf_counter() - started
                changed = eligible - model.objects.filter(state__in=states).count()
                transaction.set_rollback(True)
            print(f"admin        {response.status_code} {seconds * 1000:8.0f} ms {len(recorder.queries):4d} q  "
                  f"select all, requeue {step}: {url} ({eligible:,} dead or failed, {changed:,} changed)", flush=True)


def fill(url: str) -> None:
    """A scratch database: migrated, the demo city, then bench/pages_fill.sql."""
    import psycopg
    from django.core.management import call_command

    from bench.benchdb import recreate_database
    from communities import pii

    recreate_database(url)
    call_command("migrate", verbosity=0)
    call_command("seed_demo", residents=2000, stdout=open(os.devnull, "w"))  # noqa: SIM115
    values = {"enc_id": pii.encrypt("110101199001011237"), "enc_phone": pii.encrypt("13800138000"),
              "enc_name": pii.encrypt("王小明")}
    sql = (ROOT / "bench" / "pages_fill.sql").read_text()
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in sql.split(";\n"):
            body = "\n".join(line for line in statement.splitlines() if not line.startswith("--")).strip()
            if not body:
                continue
            for name, value in values.items():
                body = body.replace(f":'{name}'", "'" + value.replace("'", "''") + "'")
            started = time.perf_counter()
            conn.execute(body.encode())
            print(f"fill: {time.perf_counter() - started:6.1f} s  {body.splitlines()[0][:90]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-shape", type=int, default=3)
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--only", default="", help="a regular expression: fetch only matching URLs")
    parser.add_argument("--no-exports", action="store_true")
    parser.add_argument("--bulk-actions", action="store_true",
                        help="as admin, also time the requeue actions on every dead or failed row (rolled back)")
    parser.add_argument("--explain", type=int, default=12, help="EXPLAIN the slowest query of the N slowest pages")
    parser.add_argument("--timeout", type=int, default=60, help="statement_timeout (s) for each query")
    parser.add_argument("--fill", action="store_true", help="DROP the database and fill it anew (see above)")
    args = parser.parse_args()

    import django

    django.setup()
    if args.fill:
        fill(os.environ["DATABASE_URL"])
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from bench.report import load_average
    from communities.models import User
    from tests.otp import verify_session

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["*"]
    settings.RATELIMIT_ENABLE = False
    only = re.compile(args.only) if args.only else None
    print(f"load average at the start: {load_average()}", flush=True)
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = '{args.timeout}s'")
        cursor.execute("SELECT relname, reltuples::bigint FROM pg_class WHERE relkind IN ('r', 'p') AND reltuples > 100000 "
                       "ORDER BY reltuples DESC")
        print("big tables: " + ", ".join(f"{name} {rows:,}" for name, rows in cursor.fetchall()), flush=True)

    hits: list[Hit] = []
    for role in args.roles.split(","):
        user = User.objects.get(username=role)
        client = Client(raise_request_exception=False)
        client.force_login(user)
        verify_session(client, user)
        queue = ["/", "/console/"]
        if role == "admin":
            queue += admin_variants()
        queue += ["/api/v1/appeals/", "/api/v1/appeals/?queue=open", "/api/v1/appeals/?ordering=sla",
                  "/api/v1/appeals/?category=stranded", "/api/v1/appeals/?district=1",
                  "/api/v1/appeals/?filed_after=2026-11-01", "/api/v1/clearance/tasks/", "/api/v1/clearance/tasks/?state=open",
                  "/api/v1/venues/", "/api/v1/venues/risk-windows/", "/api/v1/venues/scans/"]
        seen: set[str] = set()
        per_shape: dict[str, int] = defaultdict(int)
        started = time.perf_counter()
        while queue:
            url = urldefrag(queue.pop(0))[0]
            if url in seen or url.startswith(SKIP) or (only and not only.search(url)):
                continue
            seen.add(url)
            # One shape: the path with digits as <n>, and the names (not values) of its parameters
            # (at most --per-shape filter values, sorts or cursors of one list).
            query = url.partition("?")[2]
            if "_changelist_filters" in query or "_popup" in query:
                continue  # the same change form again, or a pop-up picker
            key = shape(url) + "?" + ",".join(sorted({part.split("=")[0] for part in query.split("&") if part}))
            if per_shape[key] >= args.per_shape:
                continue
            per_shape[key] += 1
            try:
                hit, body = fetch(client, role, url)
            except Exception as exc:  # noqa: BLE001 - a crawl reports, it does not stop
                print(f"{role:12s} ERROR {url}: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
                connection.close()
                continue
            hits.append(hit)
            flag = " SLOW" if hit.seconds >= SLOW_S else ""
            print(f"{role:12s} {hit.status} {hit.seconds * 1000:8.0f} ms {hit.queries:4d} q  slowest {hit.slowest_ms:7.0f} ms  "
                  f"{url}{flag}", flush=True)
            if hit.status == 200 and body and "html" in (body[:200].decode("utf-8", "ignore").lower() + "html"):
                links = Links()
                links.feed(body.decode("utf-8", "ignore"))
                for href in links.hrefs:
                    absolute = urljoin(url, href)
                    parts = urlsplit(absolute)
                    if parts.scheme in ("http", "https") and parts.netloc not in ("testserver", ""):
                        continue
                    nxt = parts.path + (f"?{parts.query}" if parts.query else "")
                    if nxt.startswith("/admin/") and not (re.fullmatch(r"/admin/\w+/\w+/", url) and href.startswith("?")):
                        continue  # the admin's pages: admin_variants() and each changelist's filter links
                    queue.append(nxt)
                api_next = re.search(rb'"next":\s*"(http[^"]+)"', body)
                if api_next:
                    nxt = urlsplit(api_next.group(1).decode())
                    queue.append(nxt.path + "?" + nxt.query)
        if args.bulk_actions and role == "admin":
            bulk_actions(client)
        if not args.no_exports and role in ("admin", "supervisor1", "operator1", "worker1"):
            for url, query in (("/console/exports/appeals/", "queue=all"), ("/console/exports/popups/", ""),
                               ("/console/exports/clearance-tasks/", ""), ("/console/exports/appeals/", "queue=open")):
                if only and not only.search(url):
                    continue
                for fmt in ("csv",):
                    try:
                        hit, _body = fetch(client, role, url, {"reason": "scale bench", "format": fmt, "query": query})
                    except Exception as exc:  # noqa: BLE001
                        print(f"{role:12s} ERROR {url}: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
                        connection.close()
                        continue
                    hits.append(hit)
                    print(f"{role:12s} {hit.status} {hit.seconds * 1000:8.0f} ms {hit.queries:4d} q  slowest "
                          f"{hit.slowest_ms:7.0f} ms  {hit.url} {fmt} {hit.body_bytes / 2**20:.1f} MB, RSS +{hit.rss_mb:.0f} MB",
                          flush=True)
        mine = [h for h in hits if h.role == role]
        if mine:
            times = sorted(h.seconds * 1000 for h in mine)
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            print(f"== {role}: {len(mine)} requests in {time.perf_counter() - started:.0f} s; p50 {statistics.median(times):.0f} ms, "
                  f"p95 {p95:.0f} ms, max {times[-1]:.0f} ms; queries max {max(h.queries for h in mine)}; "
                  f"over {SLOW_S:.0f} s: {sum(1 for h in mine if h.seconds >= SLOW_S)}; 5xx: "
                  f"{sum(1 for h in mine if h.status >= 500)}", flush=True)

    print(f"\nslowest {args.explain} requests, their slowest query's plan:")
    for hit in sorted(hits, key=lambda h: -h.seconds)[: args.explain]:
        print(f"\n--- {hit.role} {hit.url}: {hit.seconds * 1000:.0f} ms, {hit.queries} queries, slowest {hit.slowest_ms:.0f} ms")
        if not hit.slowest_sql or hit.slowest_ms < 50:
            continue
        print(f"    {hit.slowest_sql[:400]}")
        try:
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + hit.slowest_sql, hit.slowest_params)
                for (line,) in cursor.fetchall()[:25]:
                    print("    " + line)
        except Exception as exc:  # noqa: BLE001
            print(f"    (no plan: {type(exc).__name__}: {str(exc)[:120]})")
            connection.close()
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
