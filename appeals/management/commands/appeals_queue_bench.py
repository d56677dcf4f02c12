"""Fill a throw-away database with N valid appeals (set-based SQL) and time the console queue's
REAL page, rendered for a logged-in operator (session + second factor, every middleware, the
template) with DEBUG off as in production, next to the bare SQL of its page query timed in the
same run (alternating, so both see the same load): per queue and depth, page p95 and p50, the
page's query count, the bare SQL's p95 and the ratio.

    DATABASE_URL=postgres://.../hk_bench python manage.py migrate
    DATABASE_URL=postgres://.../hk_bench python manage.py appeals_queue_bench --appeals 200000 --i-know

Every queue the console offers is timed on its first page and with the cursor at row --depth
(where the queue is that deep), plus the other orderings of the open queue, and the open queue
under each filter the page offers, alone and combined with a district (--no-filters skips those). Aim (issue 15): page
p95 <= 100 ms at any depth with 6 queries or fewer; each line also goes through bench.report.emit
(reference = that aim; the bare SQL and its ratio in the record).

Refuses to run without --i-know: it inserts fake residents, communities and appeals (names start
"bench-"). The fake appeals point at the fake residents and communities only, so a database that
already has residents (the demo, a copy) keeps its foreign keys whole.
"""

import datetime as dt
import statistics
import time

from django.core.exceptions import EmptyResultSet
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from appeals import selectors
from appeals.filters import AppealFilter
from appeals.models import Appeal
from bench.report import emit, load_average
from communities.models import Community, District, User
from healthkit import clock

AIM_MS = 100.0
AIM_QUERIES = 6

FILL_SQL = """
INSERT INTO communities_street (district_id, code, name, kind)
SELECT d.id, 'BS' || d.id, 'bench-街道' || d.id, 'street' FROM communities_district d
ON CONFLICT DO NOTHING;
INSERT INTO communities_community (street_id, code, name, phone, address)
SELECT s.id, 'BC' || s.id || '-' || g, 'bench-社区' || s.id || '-' || g, '', ''
FROM communities_street s, generate_series(1, 20) g WHERE s.name LIKE 'bench-%%'
ON CONFLICT DO NOTHING;

INSERT INTO communities_resident (name, id_encrypted, id_hash, id_masked, community_id, created_at)
SELECT 'bench-' || g, 'x', encode(sha256(('bench-resident-' || g)::bytea), 'hex'),
       '11**************' || lpad((g %% 100)::text, 2, '0'), NULL, now()
FROM generate_series(1, %(residents)s) g
ON CONFLICT DO NOTHING;

CREATE TEMP TABLE bench_resident AS
SELECT id, (row_number() OVER (ORDER BY id)) - 1 AS rn FROM communities_resident WHERE name LIKE 'bench-%%';
CREATE UNIQUE INDEX ON bench_resident (rn);
CREATE TEMP TABLE bench_community AS
SELECT id, (row_number() OVER (ORDER BY id)) - 1 AS rn FROM communities_community WHERE name LIKE 'bench-%%';
CREATE UNIQUE INDEX ON bench_community (rn);

INSERT INTO appeals_appeal (reference, resident_id, claimed_name_encrypted, claimed_id_encrypted, claimed_id_hash,
    claimed_masked, popup_type_claimed, category, priority, status, channel, address_text,
    contact_phone_encrypted, contact_phone_hash, contact_phone_masked, description, currently_outside_city,
    wishes_to_return, filer_unconfirmed, language, repeat_count, created_at, updated_at, sla_due_at,
    sla_breached_at, close_reason, outcome, community_id, routed_community_id, assigned_to_id)
SELECT 'B' || lpad(g::text, 9, '0'), r.id, '', '', '', '',
       1 + g %% 4,
       (ARRAY['correction','emergency_medical','emergency_relative','emergency_business','stranded','old_phone','other'])[1 + g %% 7],
       CASE WHEN g %% 7 BETWEEN 1 AND 3 THEN 1 WHEN g %% 7 = 4 THEN 2 ELSE 3 END,
       s.status,
       'online', '', '', md5('p' || (g %% 50000)::text) || md5('q' || (g %% 50000)::text), '138****0000', '',
       false, false, false, 'zh-hans', CASE WHEN g %% 11 = 0 THEN 1 ELSE 0 END,
       now() - (g || ' seconds')::interval, now(),
       now() - (g || ' seconds')::interval + interval '24 hours',
       CASE WHEN g > 86400 THEN now() - ((g - 86400) || ' seconds')::interval END, '', '',
       c.id, CASE WHEN s.status = 'routed' THEN c.id END,
       CASE WHEN s.status IN ('in_progress', 'waiting_resident') AND g %% 2 = 0 THEN %(operator)s END
FROM generate_series(1, %(appeals)s) g
JOIN bench_resident r ON r.rn = g %% (SELECT count(*) FROM bench_resident)
LEFT JOIN bench_community c ON c.rn = g %% greatest(1, (SELECT count(*) FROM bench_community)) AND g %% 5 <> 1
CROSS JOIN LATERAL (SELECT CASE WHEN g %% %(open_every)s = 0
            THEN (ARRAY['new','in_progress','waiting_resident','routed'])[1 + (g / %(open_every)s) %% 4]
            ELSE 'closed' END AS status) s;
DROP TABLE bench_resident;
DROP TABLE bench_community;
ANALYZE communities_resident; ANALYZE communities_community; ANALYZE appeals_appeal;
"""

# (label, query string, ordering): every queue the console offers, in its default order (priority),
# then the open queue in the other orders the sort menu offers.
CASES = [
    *[(f"{key}, priority{' (default)' if key == 'open' else ''}", {"queue": key}, "priority")
      for key, _label in AppealFilter.QUEUES],
    ("open, SLA first", {"queue": "open"}, "sla"),
    ("open, oldest", {"queue": "open"}, "oldest"),
    ("open, newest", {"queue": "open"}, "newest"),
]



def filter_cases(operator: User) -> list[tuple[str, dict, str]]:
    """The open queue (priority order) under each filter the page offers, and districts combined
    with the other filters: at this fill a district holds one popup type and few statuses, so most
    combinations match nothing (the case where a walk of the ordering's index reads the queue)."""
    district = (District.objects.filter(streets__communities__name__startswith="bench-").order_by("pk").first())
    community = Community.objects.filter(name__startswith="bench-").order_by("pk").first()
    reference = Appeal.objects.filter(status=Appeal.Status.NEW).order_by("-pk").values_list("reference", flat=True)[:1]
    if district is None or community is None:
        return []
    yesterday = (clock.today() - dt.timedelta(days=1)).isoformat()
    d = str(district.pk)
    filters = [
        ("district", {"district": d}), ("community code", {"community": community.code}),
        ("community name", {"community": community.name[:-1]}), ("status new", {"status": "new"}),
        ("status closed", {"status": "closed"}), ("popup type 3", {"popup_type": "3"}),
        ("popup type 5", {"popup_type": "5"}), ("category stranded", {"category": "stranded"}),
        ("priority high", {"priority": "2"}), ("channel phone", {"channel": "phone"}),
        ("assigned to", {"assigned_to": str(operator.pk)}), ("reference", {"reference": (list(reference) or ["-"])[0]}),
        ("filed from yesterday", {"filed_after": yesterday}), ("filed until yesterday", {"filed_before": yesterday}),
        ("escalated", {"escalated": "true"}), ("appealed again", {"repeated": "true"}),
        ("stranded", {"stranded": "true"}), ("closed from yesterday", {"closed_after": yesterday}),
        *[(f"district + popup type {t}", {"district": d, "popup_type": str(t)}) for t in (1, 2, 3, 4)],
        ("district + status routed", {"district": d, "status": "routed"}),
        ("district + category stranded", {"district": d, "category": "stranded"}),
        ("district + channel phone", {"district": d, "channel": "phone"}),
    ]
    return [(f"open, {label}", {"queue": "open", **params}, "priority") for label, params in filters]


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


class Command(BaseCommand):
    help = "Bulk-fill valid fake appeals and time the real queue page against its bare SQL (benchmark databases only)."

    def add_arguments(self, parser):
        parser.add_argument("--appeals", type=int, default=200_000)
        parser.add_argument("--residents", type=int, default=50_000)
        parser.add_argument("--open-every", type=int, default=3,
                            help="One appeal in N is open (default 3: a deep backlog, so page 1,000 exists).")
        parser.add_argument("--depth", type=int, default=50_000, help="Row the deep cursor points at.")
        parser.add_argument("--repeat", type=int, default=40, help="Timed requests per queue and depth.")
        parser.add_argument("--only", default="", help="Comma-separated queue keys to time (default: all).")
        parser.add_argument("--i-know", action="store_true", help="Confirm this database is disposable.")
        parser.add_argument("--skip-fill", action="store_true")
        parser.add_argument("--no-filters", action="store_true",
                            help="Time the queues and orderings only, not the open queue under each filter.")

    def handle(self, *args, appeals, residents, open_every, depth, repeat, only, i_know, skip_fill, no_filters,
               **options):
        if not i_know:
            raise CommandError("This inserts fake data; pass --i-know on a throw-away database.")
        user, _ = User.objects.get_or_create(username="bench-operator", defaults={"role": User.Role.OPERATOR})
        if not skip_fill:
            started = time.monotonic()
            with connection.cursor() as cursor:
                cursor.execute(FILL_SQL, {"appeals": appeals, "residents": residents, "open_every": open_every,
                                          "operator": user.pk})
            self.stdout.write(f"filled {appeals} appeals in {time.monotonic() - started:.1f}s")
        device = (TOTPDevice.objects.filter(user=user, confirmed=True).first()
                  or TOTPDevice.objects.create(user=user, name="bench", confirmed=True))
        client = Client()
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id  # the second factor, verified
        session.save()
        url = reverse("appeals:queue")
        total, open_count = Appeal.objects.count(), Appeal.objects.filter(status__in=Appeal.OPEN_STATUSES).count()
        self.stdout.write(f"appeals in table: {total:,}, open: {open_count:,}; {repeat} timed requests per line, "
                          f"page and bare SQL alternating; load {load_average()}")
        self.stdout.write(f"{'queue, ordering':40s} {'depth':>7s} {'page p50':>8s} {'page p95':>8s} {'queries':>7s} "
                          f"{'bare SQL p95':>12s} {'page/bare':>9s}  (ms)")
        wanted = {key.strip() for key in only.split(",") if key.strip()}
        figures = []
        # DEBUG off as in production (no query log, no template debug); the test client's host.
        with override_settings(DEBUG=False, ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False):
            for label, params, ordering in [*CASES, *([] if no_filters else filter_cases(user))]:
                if wanted and params["queue"] not in wanted:
                    continue
                for row in (1, depth):
                    figure = self._case(client, url, user, label, params, ordering, row, repeat)
                    if figure:
                        figures.append(figure)
        scale = f"{total:,} appeals, {open_count:,} open; {repeat} requests"
        for path, page, extra in figures:
            emit(path, project=page, reference=AIM_MS, unit="ms", ratio=page / AIM_MS, aim="<= 1", scale=scale,
                 reference_is=f"the aim, page p95 {AIM_MS:.0f} ms", **extra)
        slow = [path for path, page, extra in figures if page > AIM_MS or not extra["queries_met"]]
        self.stdout.write(f"aim (p95 <= {AIM_MS:.0f} ms, <= {AIM_QUERIES} queries): "
                          f"{'met on every line' if not slow else 'NOT met: ' + '; '.join(slow)}; "
                          f"load {load_average()}")

    def _case(self, client, url, user, label, params, ordering, row, repeat) -> tuple[str, float, dict] | None:
        qs = AppealFilter(params, queryset=selectors.appeals_visible_to(user), user=user).qs
        _index, fields = selectors.ORDERINGS[ordering]
        query = dict(params, order=ordering)
        cursor_value = None
        if row > 1:
            seekable = qs.filter(sla_due_at__isnull=False) if ordering == "sla" else qs
            keys = list(seekable.order_by(*fields).values_list(*[f.lstrip("-") for f in fields])[row - 1:row])
            if not keys:
                self.stdout.write(f"{label:40s} {row:7d}  (fewer rows than the depth)")
                return None
            cursor_value = selectors._encode(list(keys[0]))
            query["after"] = cursor_value
        # The bare reference: the page's main query (its rows with the same columns and joins, and
        # the capped count), its SQL fetched raw.
        try:
            sql, sql_params = selectors.page_sql(qs, ordering=ordering, cursor=cursor_value)
        except EmptyResultSet:  # a filter that can match nothing: the page asks the database nothing
            sql = None
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url, query)  # also warms the caches
        if response.status_code != 200:
            raise CommandError(f"queue page answered {response.status_code}")
        queries = len(ctx.captured_queries)
        page_ms, bare_ms = [], []
        with connection.cursor() as cursor:
            for _ in range(repeat):
                started = time.perf_counter()
                response = client.get(url, query)
                page_ms.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise CommandError(f"queue page answered {response.status_code}")
                if sql is None:
                    continue
                started = time.perf_counter()
                cursor.execute(sql, sql_params)
                cursor.fetchall()
                bare_ms.append((time.perf_counter() - started) * 1000)
        page, bare = p95(page_ms), p95(bare_ms) if bare_ms else None
        where = "page 1" if row == 1 else f"row {row:,}"
        self.stdout.write(f"{label:40s} {row:7d} {statistics.median(page_ms):8.1f} {page:8.1f} {queries:7d} "
                          + (f"{bare:12.2f} {page / bare:9.1f}" if bare else f"{'-':>12s} {'-':>9s}"))
        return (f"operator queue, {label}, {where}", page, {
            "queries": queries, "queries_aim": f"<= {AIM_QUERIES}", "queries_met": queries <= AIM_QUERIES,
            "page_p50_ms": round(statistics.median(page_ms), 2), "bare_sql_p95_ms": round(bare, 3) if bare else None,
            "page_over_bare_sql": round(page / bare, 1) if bare else None})
