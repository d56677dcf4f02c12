"""Fill a throw-away database with N appeals (set-based SQL) and time the console queue's reads.

    DATABASE_URL=postgres://.../hk_bench python manage.py migrate
    DATABASE_URL=postgres://.../hk_bench python manage.py appeals_queue_bench --appeals 1000000 --i-know

Refuses to run without --i-know: it inserts fake residents and appeals.
"""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from appeals import selectors
from appeals.filters import AppealFilter
from appeals.models import Appeal
from communities.models import User

FILL_SQL = """
INSERT INTO communities_resident (name, id_encrypted, id_hash, id_masked, community_id, created_at)
SELECT '测试' || g, 'x', md5('bench-resident-' || g) || md5('r' || g), '11**************' || lpad((g %% 100)::text, 2, '0'),
       NULL, now()
FROM generate_series(1, %(residents)s) g
ON CONFLICT DO NOTHING;

INSERT INTO appeals_appeal (reference, resident_id, popup_type_claimed, category, priority, status, channel,
    address_text, contact_phone_encrypted, contact_phone_hash, contact_phone_masked, description,
    currently_outside_city, wishes_to_return, repeat_count, created_at, updated_at, sla_due_at, close_reason, outcome)
SELECT 'B' || lpad(g::text, 9, '0'),
       (SELECT min(id) FROM communities_resident) + (g %% %(residents)s),
       1 + g %% 4,
       (ARRAY['correction','emergency_medical','emergency_relative','emergency_business','stranded','old_phone','other'])[1 + g %% 7],
       CASE WHEN g %% 7 BETWEEN 1 AND 3 THEN 1 WHEN g %% 7 = 4 THEN 2 ELSE 3 END,
       -- about 1 in 10 still open, the rest closed: a realistic backlog
       CASE WHEN g %% 10 = 0 THEN (ARRAY['new','in_progress','waiting_resident','routed'])[1 + (g / 10) %% 4] ELSE 'closed' END,
       'online', '', '', md5('p' || (g %% 50000)::text) || md5('q' || (g %% 50000)::text), '138****0000', '',
       false, false, 0,
       now() - (g || ' seconds')::interval, now(),
       now() - (g || ' seconds')::interval + interval '24 hours', '', ''
FROM generate_series(1, %(appeals)s) g;
ANALYZE communities_resident; ANALYZE appeals_appeal;
"""


class Command(BaseCommand):
    help = "Bulk-fill fake appeals and time the queue (benchmark databases only)."

    def add_arguments(self, parser):
        parser.add_argument("--appeals", type=int, default=1_000_000)
        parser.add_argument("--residents", type=int, default=200_000)
        parser.add_argument("--i-know", action="store_true", help="Confirm this database is disposable.")
        parser.add_argument("--skip-fill", action="store_true")

    def handle(self, *args, appeals, residents, i_know, skip_fill, **options):
        if not i_know:
            raise CommandError("This inserts fake data; pass --i-know on a throw-away database.")
        if not skip_fill:
            started = time.monotonic()
            with connection.cursor() as cursor:
                cursor.execute(FILL_SQL, {"appeals": appeals, "residents": residents})
            self.stdout.write(f"filled {appeals} appeals in {time.monotonic() - started:.1f}s")
        user, _ = User.objects.get_or_create(username="bench-operator", defaults={"role": User.Role.OPERATOR})
        base = selectors.appeals_visible_to(user).select_related("resident", "community__street__district",
                                                                 "routed_community", "assigned_to")
        cases = [
            ("open queue, priority", {"queue": "open"}, "priority"),
            ("open queue, SLA first", {"queue": "open"}, "sla"),
            ("emergencies", {"queue": "emergency"}, "priority"),
            ("all, newest", {"queue": "all"}, "newest"),
            ("category stranded, all", {"queue": "all", "category": "stranded"}, "newest"),
            ("reference", {"queue": "all", "reference": "B000500000"}, "newest"),
        ]
        for label, params, ordering in cases:
            qs = AppealFilter(params, queryset=base, user=user).qs
            timings = []
            cursor_value = None
            for _page in range(3):
                with CaptureQueriesContext(connection) as ctx:
                    started = time.monotonic()
                    page = selectors.seek_page(qs, ordering=ordering, cursor=cursor_value, size=50)
                    timings.append((time.monotonic() - started) * 1000)
                cursor_value = page.next_cursor
                if not cursor_value:
                    break
            self.stdout.write(f"{label:28s} rows={len(page.rows):3d} count={'>' if page.count_capped else ''}"
                              f"{page.count} pages ms={[round(t, 1) for t in timings]} queries={len(ctx.captured_queries)}")
        total = Appeal.objects.count()
        self.stdout.write(f"appeals in table: {total}")
