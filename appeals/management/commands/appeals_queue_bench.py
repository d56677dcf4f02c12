"""Fill a throw-away database with N valid appeals (set-based SQL) and time the console queue's
REAL page, rendered for a logged-in operator (session + second factor), next to the bare SQL of
its page query: page p95, query count, bare p95 and their ratio per queue and depth.

    DATABASE_URL=postgres://.../hk_bench python manage.py migrate
    DATABASE_URL=postgres://.../hk_bench python manage.py appeals_queue_bench --appeals 200000 --i-know

Refuses to run without --i-know: it inserts fake residents and appeals (names start "bench-").
The fake appeals point at the fake residents only, so a database that already has residents
(the demo, a copy) keeps its foreign keys whole.
"""

import time

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
from communities.models import User

FILL_SQL = """
INSERT INTO communities_resident (name, id_encrypted, id_hash, id_masked, community_id, created_at)
SELECT 'bench-' || g, 'x', encode(sha256(('bench-resident-' || g)::bytea), 'hex'),
       '11**************' || lpad((g %% 100)::text, 2, '0'), NULL, now()
FROM generate_series(1, %(residents)s) g
ON CONFLICT DO NOTHING;

CREATE TEMP TABLE bench_resident AS
SELECT id, (row_number() OVER (ORDER BY id)) - 1 AS rn FROM communities_resident WHERE name LIKE 'bench-%%';
CREATE UNIQUE INDEX ON bench_resident (rn);

INSERT INTO appeals_appeal (reference, resident_id, claimed_name_encrypted, claimed_id_encrypted, claimed_id_hash,
    claimed_masked, popup_type_claimed, category, priority, status, channel, address_text,
    contact_phone_encrypted, contact_phone_hash, contact_phone_masked, description, currently_outside_city,
    wishes_to_return, filer_unconfirmed, language, repeat_count, created_at, updated_at, sla_due_at,
    close_reason, outcome)
SELECT 'B' || lpad(g::text, 9, '0'), r.id, '', '', '', '',
       1 + g %% 4,
       (ARRAY['correction','emergency_medical','emergency_relative','emergency_business','stranded','old_phone','other'])[1 + g %% 7],
       CASE WHEN g %% 7 BETWEEN 1 AND 3 THEN 1 WHEN g %% 7 = 4 THEN 2 ELSE 3 END,
       CASE WHEN g %% %(open_every)s = 0
            THEN (ARRAY['new','in_progress','waiting_resident','routed'])[1 + (g / %(open_every)s) %% 4]
            ELSE 'closed' END,
       'online', '', '', md5('p' || (g %% 50000)::text) || md5('q' || (g %% 50000)::text), '138****0000', '',
       false, false, false, 'zh-hans', 0,
       now() - (g || ' seconds')::interval, now(),
       now() - (g || ' seconds')::interval + interval '24 hours', '', ''
FROM generate_series(1, %(appeals)s) g
JOIN bench_resident r ON r.rn = g %% (SELECT count(*) FROM bench_resident);
DROP TABLE bench_resident;
ANALYZE communities_resident; ANALYZE appeals_appeal;
"""

CASES = [
    ("open, priority (default)", {"queue": "open"}, "priority"),
    ("open, SLA first", {"queue": "open"}, "sla"),
    ("emergencies", {"queue": "emergency"}, "priority"),
    ("all, newest", {"queue": "all"}, "newest"),
]


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
        parser.add_argument("--repeat", type=int, default=20)
        parser.add_argument("--i-know", action="store_true", help="Confirm this database is disposable.")
        parser.add_argument("--skip-fill", action="store_true")

    def handle(self, *args, appeals, residents, open_every, depth, repeat, i_know, skip_fill, **options):
        if not i_know:
            raise CommandError("This inserts fake data; pass --i-know on a throw-away database.")
        if not skip_fill:
            started = time.monotonic()
            with connection.cursor() as cursor:
                cursor.execute(FILL_SQL, {"appeals": appeals, "residents": residents, "open_every": open_every})
            self.stdout.write(f"filled {appeals} appeals in {time.monotonic() - started:.1f}s")
        user, _ = User.objects.get_or_create(username="bench-operator", defaults={"role": User.Role.OPERATOR})
        device = (TOTPDevice.objects.filter(user=user, confirmed=True).first()
                  or TOTPDevice.objects.create(user=user, name="bench", confirmed=True))
        client = Client()
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        url = reverse("appeals:queue")
        self.stdout.write(f"appeals in table: {Appeal.objects.count()}, open: "
                          f"{Appeal.objects.filter(status__in=Appeal.OPEN_STATUSES).count()}; repeat={repeat}")
        self.stdout.write(f"{'queue':26s} {'depth':>7s} {'page p95 ms':>11s} {'queries':>7s} "
                          f"{'bare SQL p95 ms':>15s} {'ratio':>6s}")
        with override_settings(ALLOWED_HOSTS=["testserver"], SECURE_SSL_REDIRECT=False):
            for label, params, ordering in CASES:
                for row in (1, depth):
                    self._case(client, url, user, label, params, ordering, row, repeat)

    def _case(self, client, url, user, label, params, ordering, row, repeat):
        qs = AppealFilter(params, queryset=selectors.appeals_visible_to(user), user=user).qs
        _index, fields = selectors.ORDERINGS[ordering]
        query = dict(params, order=ordering)
        cursor_value = None
        if row > 1:
            seekable = qs.filter(sla_due_at__isnull=False) if ordering == "sla" else qs
            keys = list(seekable.order_by(*fields).values_list(*[f.lstrip("-") for f in fields])[row - 1:row])
            if not keys:
                self.stdout.write(f"{label:26s} {row:7d}  (fewer rows than the depth)")
                return
            cursor_value = selectors._encode(list(keys[0]))
            query["after"] = cursor_value
        client.get(url, query)  # warm
        page_ms, queries = [], 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                response = client.get(url, query)
                page_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise CommandError(f"queue page answered {response.status_code}")
            queries = len(ctx.captured_queries)
        # The bare reference: the selector's own page query (same rows, same joins), fetched raw.
        sql, sql_params = selectors.page_rows(qs, ordering=ordering, cursor=cursor_value).query.sql_with_params()
        bare_ms = []
        with connection.cursor() as cursor:
            for _ in range(repeat):
                started = time.perf_counter()
                cursor.execute(sql, sql_params)
                cursor.fetchall()
                bare_ms.append((time.perf_counter() - started) * 1000)
        page, bare = p95(page_ms), p95(bare_ms)
        self.stdout.write(f"{label:26s} {row:7d} {page:11.1f} {queries:7d} {bare:15.2f} {page / bare:6.1f}")
