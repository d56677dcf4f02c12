"""The supervisor dashboard at city scale: 1 M popups and 1 M appeals (plus their residents, lift
events and clearance tasks), filled with generate_series in SQL. Prints the summary refresh's
time, then the real page (a logged-in supervisor through Django's test client: middleware,
view, template) next to the bare aggregate queries the page runs, p50 / p95, and the ratio;
and, for comparison, the same figures grouped straight from the base tables.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hk_bench_dashboard .venv/bin/python bench/dashboard.py
    .venv/bin/python bench/dashboard.py --scale 0.1          # 100 k popups, 100 k appeals

The database named in DATABASE_URL (default hk_bench_dashboard) is DROPPED and re-created: point
it at a dedicated database only. Aim (issue 14): page p95 under 500 ms and within 2x of the
aggregate queries. Each view's p95 ratio is also printed through `bench/report.py` (`RESULT`
lines for `bench/run_all.py`).
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hk_bench_dashboard")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthkit.settings")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["CELERY_BROKER_URL"] = "memory://"


from bench.benchdb import recreate_database  # noqa: E402 - after the path setup above
from bench.report import load_average  # noqa: E402


def step(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{label:<52} {seconds:8.2f} s", flush=True)
    return seconds


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


FILL = [
    # streets and communities: 10 per district, 30 per street
    """INSERT INTO communities_street (district_id, code, name, kind)
       SELECT d.id, d.code || lpad(g::text, 3, '0'), '街道' || g, 'street'
       FROM communities_district d, generate_series(1, 10) g""",
    """INSERT INTO communities_community (street_id, code, name, phone, address)
       SELECT s.id, s.code || lpad(g::text, 3, '0'), '社区' || s.id || '-' || g, '', ''
       FROM communities_street s, generate_series(1, 30) g""",
    # residents: one per popup
    """INSERT INTO communities_resident (name, id_encrypted, id_hash, id_masked, community_id, created_at)
       SELECT '王某', 'bench', md5(g::text), '11**************00',
              (SELECT min(id) FROM communities_community) + g %% (SELECT count(*) FROM communities_community),
              now()
       FROM generate_series(1::bigint, %(n)s) g""",
    # popups: 20 % active, 10 % under review, 65 % lifted, 5 % withdrawn; over 90 days
    """INSERT INTO healthkit_popupcase (resident_id, popup_type, dedupe_key, cause, source, state, raised_at,
                                       lifted_at, updated_at)
       SELECT r.id, 1 + g %% 5, '', '{}'::jsonb, (ARRAY['engine','upstream','venue','manual'])[1 + g %% 4],
              CASE WHEN g %% 20 < 4 THEN 'active' WHEN g %% 20 < 6 THEN 'under_review'
                   WHEN g %% 20 < 19 THEN 'lifted' ELSE 'withdrawn' END,
              now() - make_interval(mins => ((g * 7919) %% (90 * 1440))::int),
              CASE WHEN g %% 20 >= 6 THEN now() - make_interval(mins => ((g * 7919) %% (90 * 1440))::int)
                                             + make_interval(mins => (30 + (g * 104729) %% (10 * 1440))::int) END,
              now()
       FROM generate_series(1::bigint, %(n)s) g
       JOIN communities_resident r ON r.id_hash = md5(g::text)""",
    """UPDATE healthkit_popupcase SET lifted_at = now() WHERE lifted_at > now()""",
    # one lift event per lifted popup: two in three by the engine, one by a person
    """INSERT INTO healthkit_popupevent (case_id, kind, from_state, to_state, actor_id, actor_label, reason, data,
                                        at, recorded_at)
       SELECT p.id, 'lifted', 'active', 'lifted', CASE WHEN p.id %% 3 = 0 THEN %(user)s END,
              CASE WHEN p.id %% 3 = 0 THEN 'supervisor' ELSE 'engine' END, '', '{}'::jsonb, p.lifted_at, p.lifted_at
       FROM healthkit_popupcase p WHERE p.state = 'lifted'""",
    # appeals: 15 % open, the rest closed; over 90 days
    """INSERT INTO appeals_appeal (reference, resident_id, popup_id, popup_type_claimed, category, priority, status,
                                  channel, community_id, address_text, contact_phone_encrypted, contact_phone_hash,
                                  contact_phone_masked, description, currently_outside_city, outside_since,
                                  wishes_to_return, filer_unconfirmed, repeat_count, routed_community_id, sla_due_at,
                                  sla_breached_at, escalated_at, created_at, updated_at, closed_at, close_reason,
                                  outcome, language, claimed_id_encrypted, claimed_id_hash, claimed_masked,
                                  claimed_name_encrypted)
       SELECT 'B' || lpad(g::text, 9, '0'), r.id, NULL, 1 + g %% 5,
              (ARRAY['correction','emergency_medical','stranded','old_phone','other'])[1 + g %% 5],
              1 + g %% 3, CASE WHEN g %% 20 < 3 THEN (ARRAY['new','in_progress','routed'])[1 + g %% 3] ELSE 'closed' END,
              (ARRAY['online','phone','open311'])[1 + g %% 3], r.community_id, '', '', '', '', '',
              g %% 7 = 0, CASE WHEN g %% 7 = 0 THEN current_date - (g %% 60)::int END, false, false, g %% 4,
              NULL, now() - make_interval(mins => ((g * 6007) %% (90 * 1440))::int) + interval '24 hours',
              CASE WHEN g %% 11 = 0 THEN now() END, CASE WHEN g %% 23 = 0 THEN now() END,
              now() - make_interval(mins => ((g * 6007) %% (90 * 1440))::int), now(),
              CASE WHEN g %% 20 >= 3 THEN now() - make_interval(mins => ((g * 6007) %% (90 * 1440))::int)
                                               + make_interval(mins => (10 + (g * 3571) %% 4320)::int) END,
              '', CASE WHEN g %% 20 >= 3 THEN 'lifted' ELSE '' END, 'zh-hans', '', '', '', ''
       FROM generate_series(1::bigint, %(n_appeals)s) g
       JOIN communities_resident r ON r.id_hash = md5((1 + (g * 31) %% %(n)s)::text)""",
    """UPDATE appeals_appeal SET closed_at = now() WHERE closed_at > now()""",
    # clearance tasks for one popup in twenty (the open ones)
    """INSERT INTO clearance_clearancetask (resident_id, community_id, popup_id, origin, state, priority, sla_due_at,
                                          wishes_to_return, confirmation, contact_phone_encrypted,
                                          contact_phone_masked, commitment_required, commitment_digest, outcome,
                                          decision_reason, created_at, updated_at)
       SELECT p.resident_id, r.community_id, p.id, 'risk_link', 'open', 3, p.raised_at + interval '24 hours', false,
              '{}'::jsonb, '', '', false, '', '', '', p.raised_at, now()
       FROM healthkit_popupcase p JOIN communities_resident r ON r.id = p.resident_id
       WHERE p.state IN ('active', 'under_review') AND p.id %% 4 = 0 AND r.community_id IS NOT NULL""",
    "ANALYZE",
]

BARE = """
SELECT p.popup_type, ps.district_id, count(*)
FROM healthkit_popupcase p JOIN communities_resident r ON r.id = p.resident_id
LEFT JOIN communities_community pc ON pc.id = r.community_id
LEFT JOIN communities_street ps ON ps.id = pc.street_id
WHERE p.state IN ('active', 'under_review') GROUP BY 1, 2
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--popups", type=int, default=1_000_000)
    parser.add_argument("--appeals", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--keep", action="store_true",
                        help="reuse the database a previous run filled (migrate only, no refill)")
    args = parser.parse_args()
    n, n_appeals = int(args.popups * args.scale), int(args.appeals * args.scale)

    if not args.keep:
        recreate_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import setup_test_environment

    from appeals.oversight import selectors, services
    from bench.report import emit
    from communities.models import Community, District, User

    setup_test_environment()
    call_command("migrate", verbosity=0)
    supervisor = User.objects.filter(username="bench-supervisor").first() or User.objects.create_user(
        "bench-supervisor", password=None, role=User.Role.SUPERVISOR)
    from healthkit.models import PopupCase

    if args.keep and PopupCase.objects.exists():
        n = PopupCase.objects.count()
    print(f"dashboard bench: {n:,} popups, {n_appeals:,} appeals", flush=True)

    def fill():
        with connection.cursor() as cur:
            for sql in FILL:
                cur.execute(sql, {"n": n, "n_appeals": n_appeals, "user": supervisor.pk})

    if not (args.keep and n):
        step("fill (generate_series)", fill)
    full_s = step("summary refresh, full (nightly, and the first run)", lambda: services.summary_refresh(full=True))
    refresh_s = [step("summary refresh, incremental (every minute)", services.summary_refresh) for _ in range(2)]

    client = Client()
    client.force_login(supervisor)
    from tests.otp import verify_session

    verify_session(client, supervisor)  # supervisors pass a second factor
    district = District.objects.order_by("code").first()
    today = selectors.DashboardFilters.default().date_to
    community = Community.objects.filter(street__district=district).order_by("code").first()
    cases = {"city-wide, last 30 days": {}, "one district, type 3, 90 days": {
        "district": district.pk, "popup_type": 3, "date_from": (today - dt.timedelta(days=89)).isoformat()},
        "one community, last 30 days": {"community": community.code}}
    from appeals.oversight.forms import DashboardFilterForm

    for label, params in cases.items():
        page, bare = [], []
        for i in range(args.requests + 3):
            reset_queries()
            start = time.perf_counter()
            response = client.get("/console/dashboard/", params)
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.status_code
            start = time.perf_counter()
            selectors.dashboard(DashboardFilterForm(params or None).filters())
            elapsed_bare = time.perf_counter() - start
            if i >= 3:  # warm-up
                page.append(elapsed * 1000)
                bare.append(elapsed_bare * 1000)
        (p50, p95), (b50, b95) = quantiles(page), quantiles(bare)
        print(f"{label}:\n  page      p50 {p50:7.1f} ms  p95 {p95:7.1f} ms\n"
              f"  aggregate p50 {b50:7.1f} ms  p95 {b95:7.1f} ms   ratio p50 {p50 / b50:4.2f}  p95 {p95 / b95:4.2f}",
              flush=True)
        emit(f"supervisor dashboard page, {label}", project=p95, reference=b95, unit="ms", ratio=p95 / b95,
             aim="<= 2", scale=f"{n:,} popups, {n_appeals:,} appeals; p95 of {args.requests} requests",
             page_p50_ms=round(p50, 1), aggregate_p50_ms=round(b50, 1), page_p95_under_500_ms=p95 < 500)

    with connection.cursor() as cur:
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            cur.execute(BARE)
            cur.fetchall()
            samples.append((time.perf_counter() - start) * 1000)
    print(f"for comparison, open popups by type and district from the base tables: "
          f"p50 {statistics.median(samples):.0f} ms (one figure of ~15 on the page)")
    print(f"summary refresh: incremental {min(refresh_s):.1f} s (every 60 s in Celery beat), full {full_s:.1f} s "
          f"(nightly); load {load_average()}")


if __name__ == "__main__":
    main()
