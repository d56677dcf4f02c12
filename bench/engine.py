#!/usr/bin/env python
"""Popup engine benchmark (a script, not a test).

Builds N residents, each with an arrival 80 h ago and no negative test since (so N open type-4
popups, raised by a first sweep), and M nucleic-acid results ingested through the real ingest
path (healthkit.ingest.ingest: per-record validation, resident resolution, binary COPY into the
result table, evaluation enqueued on commit). Then prints:

- result ingest rows/s next to a raw COPY of the same rows into a bare table (the ratio);
- the full sweep's time over the N open popups (and the first, raising sweep), and the
  minute-by-minute "due" sweep that re-evaluates only residents with a deadline passed;
- the full sweep against its reference, one bare set-based UPDATE doing the same lifts (no
  "why" record, event or outbox), timed in the same run, rolled back, best of --rounds: with
  nothing to change and with --sweep-changes popups to lift (project / reference / ratio);
- event-to-lift latency p50/p99 of a negative result with a real Celery worker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hk_bench \\
    .venv/bin/python bench/engine.py --residents 100000 --results 1000000

The database is created if missing, migrated, and its engine tables are emptied first: point
it at a dedicated database, never at one holding real data. `--ingest-only` reuses the
residents of an earlier full run at the same scale and times only the result ingest against
the raw COPY.
"""

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DISTRICTS = ("110101", "110102", "110105", "110106", "110107", "110108", "110109", "110111",
             "110112", "110113", "110114", "110115", "110116", "110117", "110118", "110119")
BATCH = 10_000  # the API's per-request maximum
COPY_CHUNK = 100_000


def id_number(i: int) -> str:
    """A unique, valid 18-character ID number for resident number i (deterministic)."""
    from communities.pii import id_check_digit

    birth = dt.date(1950, 1, 1) + dt.timedelta(days=(i // len(DISTRICTS)) % 20_000)
    seq = (i // (len(DISTRICTS) * 20_000)) % 1000
    first17 = f"{DISTRICTS[i % len(DISTRICTS)]}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def step(label: str):
    print(f"... {label}", flush=True)
    return time.perf_counter()


def build(args, now: dt.datetime) -> None:
    from django.db import connection

    from communities import pii

    with connection.cursor() as cursor:
        t = step("emptying the engine tables")
        # The popups, their events, outbox rows and exposures refer to residents through triggers
        # (migrations 0023/0024, venues 0004), which CASCADE does not follow: named here, or a
        # rebuild would keep the previous build's popups (and their dead rows) under new residents.
        cursor.execute("TRUNCATE communities_resident, healthkit_testresult, healthkit_ingestbatch, healthkit_enginesweep, "
                       "healthkit_popupcase, healthkit_popupevent, healthkit_outboxrecord, healthkit_outboxdelivery, "
                       "venues_exposure RESTART IDENTITY CASCADE")
        cursor.execute("DROP TABLE IF EXISTS bench_raw_results")
        print(f"    {time.perf_counter() - t:.1f} s")

        extra = fresh_count(args)
        t = step(f"residents: {args.residents:,} + {extra:,} for the due sweep (encrypted ID, keyed hash, COPY)")
        with cursor.cursor.copy(
            "COPY communities_resident (name, id_encrypted, id_hash, id_masked, created_at) FROM STDIN"
        ) as copy:
            for i in range(args.residents + extra):
                number = id_number(i)
                copy.write_row((f"居民{i}", pii.encrypt(number), pii.id_hash(number), pii.mask_id(number), now))
        print(f"    {time.perf_counter() - t:.1f} s")

        t = step("arrivals 80 h ago (type-4 triggers), COPY")
        with cursor.cursor.copy(
            "COPY healthkit_arrival (resident_id, arrived_at, from_county, record_key, received_at) FROM STDIN"
        ) as copy:
            for rid in range(1, args.residents + 1):
                arrived = now - dt.timedelta(hours=80, seconds=rid % 3600)
                copy.write_row((rid, arrived, "310115", f"bench:arrival:{rid}", arrived))
        cursor.execute("ANALYZE communities_resident; ANALYZE healthkit_arrival")
        print(f"    {time.perf_counter() - t:.1f} s")


def fresh_count(args) -> int:
    """Residents (beyond --residents) whose arrival deadline passes between the full sweep and
    the next, due-only sweep: 1 %."""
    return max(1, args.residents // 100)


def add_fresh_arrivals(args, deadline: dt.datetime) -> None:
    from django.db import connection

    arrived = deadline - dt.timedelta(hours=72)
    with connection.cursor() as cursor, cursor.cursor.copy(
        "COPY healthkit_arrival (resident_id, arrived_at, from_county, record_key, received_at) FROM STDIN"
    ) as copy:
        for rid in range(args.residents + 1, args.residents + fresh_count(args) + 1):
            copy.write_row((rid, arrived, "310115", f"bench:fresh:{rid}:{deadline.timestamp()}", arrived))


def result_records(start: int, count: int, residents: int, now: dt.datetime) -> list[dict]:
    """Negative results sampled before each resident's arrival (so they lift nothing), as the
    JSON body of an ingest request would carry them."""
    records = []
    for n in range(start, start + count):
        i = n % residents
        sampled = now - dt.timedelta(hours=100 + 24 * (n // residents), seconds=n % 3600)
        records.append({
            "id_number": id_number(i), "lab": f"lab-{n % 40:02d}", "sample_id": f"S{n:010d}",
            "sampled_at": sampled.isoformat(), "resulted_at": (sampled + dt.timedelta(hours=6)).isoformat(),
            "result": "negative", "from_other_province": n % 50 == 0,
        })
    return records


def bench_ingest(args, now: dt.datetime) -> tuple[float, float, float]:
    from django.db import connection, transaction

    from healthkit import ingest

    t_total = 0.0
    t = step(f"ingest {args.results:,} results through healthkit.ingest.ingest, batches of {BATCH:,}")
    for start in range(0, args.results, BATCH):
        records = result_records(start, min(BATCH, args.results - start), args.residents, now)
        t0 = time.perf_counter()
        result = ingest.ingest(kind="test_results", records=records, batch_id=f"bench-{start}")
        t_total += time.perf_counter() - t0
        if result.rejected or result.accepted != len(records):
            raise SystemExit(f"ingest refused records: {result.rejected[:3]} accepted={result.accepted}")
        if start // BATCH % 100 == 99:
            print(f"    {start + BATCH:,} rows, {(start + BATCH) / t_total:,.0f} rows/s", flush=True)
    ingest_rate = args.results / t_total
    print(f"    {time.perf_counter() - t:.1f} s wall, {t_total:.1f} s in ingest")

    # The same rows, already parsed, COPY'd into a bare table (no index, constraint or key).
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_raw_results (resident_id bigint, lab varchar(64), sample_id varchar(64), "
            "sampled_at timestamptz, resulted_at timestamptz, received_at timestamptz, result varchar(8), "
            "from_other_province boolean)"
        )
        t_copy = 0.0
        step(f"raw COPY of the same {args.results:,} rows into a bare table")
        for start in range(0, args.results, COPY_CHUNK):
            rows = []
            for n in range(start, min(start + COPY_CHUNK, args.results)):
                sampled = now - dt.timedelta(hours=100 + 24 * (n // args.residents), seconds=n % 3600)
                rows.append((n % args.residents + 1, f"lab-{n % 40:02d}", f"S{n:010d}", sampled,
                             sampled + dt.timedelta(hours=6), now, "negative", n % 50 == 0))
            t0 = time.perf_counter()
            with cursor.cursor.copy("COPY bench_raw_results FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            t_copy += time.perf_counter() - t0
        copy_rate = args.results / t_copy
        cursor.execute("ANALYZE healthkit_testresult")

        # Reference (rolled back): the same kind of rows COPY'd straight into the real table,
        # with its primary key, unique (lab, sample id, resident), (resident, sampled_at) index
        # and resident foreign key, but no validation, staging or conflict handling: the
        # ceiling for any ingest path that keeps those guarantees.
        n_ref = min(args.results, 500_000)
        rows = [(n % args.residents + 1, "lab-ref", f"R{n:010d}", now - dt.timedelta(hours=100),
                 now - dt.timedelta(hours=94), now, "negative", False) for n in range(n_ref)]
        with transaction.atomic():
            t0 = time.perf_counter()
            with cursor.cursor.copy(
                "COPY healthkit_testresult (resident_id, lab, sample_id, sampled_at, resulted_at, received_at, "
                "result, from_other_province) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            direct_rate = n_ref / (time.perf_counter() - t0)
            transaction.set_rollback(True)
    return ingest_rate, copy_rate, direct_rate


def purge_queue() -> int:
    from healthkit.celery import app

    with app.connection_for_write() as conn:
        return app.control.purge(connection=conn)


def bench_latency(args) -> list[float]:
    import django.db

    from healthkit import ingest
    from healthkit.models import PopupCase

    purged = purge_queue()
    print(f"    purged {purged:,} evaluation tasks queued by the bulk ingest (no worker was running)")
    env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "false"}
    log = open(ROOT / "bench" / "celery-worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "healthkit", "worker", "-Q", "engine", "-c", str(args.worker_concurrency),
         "-l", "warning", "-n", f"bench-{os.getpid()}@%h", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        from healthkit.celery import app

        deadline = time.time() + 60
        while not app.control.ping(timeout=1.0):
            if time.time() > deadline or worker.poll() is not None:
                raise SystemExit("the Celery worker did not start; see bench/celery-worker.log")
        latencies = []
        now = dt.datetime.now(dt.UTC)
        step_size = max(1, args.residents // args.samples)
        for k in range(args.samples):
            i = (k * step_size) % args.residents
            rid = i + 1
            case_id = (PopupCase.objects.filter(resident_id=rid, popup_type=4, state="active")
                       .values_list("pk", flat=True).first())
            if case_id is None:
                continue
            record = {"id_number": id_number(i), "lab": "lab-latency", "sample_id": f"L{k:08d}",
                      "sampled_at": (now - dt.timedelta(hours=2)).isoformat(),
                      "resulted_at": (now - dt.timedelta(minutes=30)).isoformat(), "result": "negative"}
            t0 = time.perf_counter()
            ingest.ingest(kind="test_results", records=[record])  # commits; enqueues on commit
            while True:
                state = PopupCase.objects.filter(pk=case_id).values_list("state", flat=True).first()
                if state == "lifted":
                    latencies.append(time.perf_counter() - t0)
                    break
                if time.perf_counter() - t0 > 30:
                    latencies.append(float("inf"))
                    break
                time.sleep(0.001)
            django.db.connection.close()  # a fresh snapshot is not needed, but keep it honest
        return latencies
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()


# The reference for the full sweep: one bare set-based UPDATE doing the same lifts (the bench's
# popups are all type 4 from arrivals): open engine popups whose every arrival has a current
# negative result sampled after it and received by `at`. No "why" record, event or outbox.
REFERENCE_LIFT = """
UPDATE healthkit_popupcase pc SET state = 'lifted', updated_at = now(), lifted_at = %(at)s
WHERE pc.state IN ('active', 'under_review') AND pc.dedupe_key = '' AND pc.source = 'engine'
  AND pc.popup_type = 4
  AND NOT EXISTS (
    SELECT 1 FROM healthkit_arrival a
    WHERE a.resident_id = pc.resident_id AND a.arrived_at + interval '72 hours' <= %(at)s
      AND NOT EXISTS (
        SELECT 1 FROM healthkit_testresult r
        WHERE r.resident_id = a.resident_id AND r.result = 'negative' AND r.sampled_at > a.arrived_at
          AND r.received_at <= %(at)s AND (r.superseded_at IS NULL OR r.superseded_at > %(at)s)))
"""


def bench_sweep_vs_reference(args, at: dt.datetime, changes: int, rounds: int) -> tuple[float, float, int, int]:
    """Full sweep against the bare UPDATE, both rolled back, alternating `rounds` times (best of
    each: the machine is shared). With `changes` > 0, that many residents first get a negative
    result sampled after their arrival (in the same, finally rolled-back, transaction)."""
    from django.conf import settings
    from django.db import connection, transaction

    from healthkit import engine

    best_project = best_reference = float("inf")
    lifted_project = lifted_reference = -1
    with transaction.atomic(), connection.cursor() as cursor:
        if changes:
            with cursor.cursor.copy(
                "COPY healthkit_testresult (resident_id, lab, sample_id, sampled_at, resulted_at, received_at, "
                "result, from_other_province) FROM STDIN"
            ) as copy:
                for rid in range(1, changes + 1):
                    copy.write_row((rid, "lab-sweep", f"W{rid:010d}", at - dt.timedelta(hours=1),
                                    at - dt.timedelta(minutes=40), at - dt.timedelta(minutes=30), "negative", False))
        for _ in range(rounds):
            with transaction.atomic():
                cursor.execute("SET LOCAL jit = off")
                cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.ENGINE_SWEEP_WORK_MEM])
                t0 = time.perf_counter()
                cursor.execute(REFERENCE_LIFT, {"at": at})
                best_reference = min(best_reference, time.perf_counter() - t0)
                lifted_reference = cursor.rowcount
                transaction.set_rollback(True)
            with transaction.atomic():
                t0 = time.perf_counter()
                result = engine.sweep(at=at, full=True)
                best_project = min(best_project, time.perf_counter() - t0)
                lifted_project = result.lifted
                transaction.set_rollback(True)
        transaction.set_rollback(True)
    return best_project, best_reference, lifted_project, lifted_reference


def compare_sweeps(args, at: dt.datetime) -> list[tuple]:
    """Both comparisons (nothing to change, --sweep-changes lifts), one after the other."""
    comparisons = []
    for changes in (0, args.sweep_changes):
        t = step(f"full sweep vs one bare UPDATE doing the same lifts, {changes:,} to lift, "
                 f"best of {args.rounds} (rolled back)")
        comparisons.append((changes, *bench_sweep_vs_reference(args, at, changes, args.rounds)))
        print(f"    {time.perf_counter() - t:.1f} s")
    return comparisons


def report_sweeps(comparisons: list[tuple], open_popups: int, args) -> None:
    from bench.report import emit

    for changes, project, reference, lifted_p, lifted_r in comparisons:
        path = "full engine sweep, nothing to change" if changes == 0 else "full engine sweep, lifts to make"
        emit(path, project=project, reference=reference, unit="s", ratio=project / reference, aim="<= 1.5",
             scale=f"{open_popups:,} open popups, {args.results:,} results, {changes:,} to lift",
             lifted_project=lifted_p, lifted_reference=lifted_r, rounds=args.rounds)


def sweep_only(args) -> None:
    """Rerun the full sweep against its reference (and, unless --skip-latency, the event-to-lift
    latency) on the data of an earlier full run."""
    from django.db import connection

    from healthkit.models import EngineSweep, PopupCase

    last = EngineSweep.objects.order_by("-pk").first()
    open_popups = PopupCase.objects.filter(state__in=PopupCase.OPEN_STATES).count()
    if last is None or open_popups < args.residents:
        raise SystemExit(f"--sweep-only needs the {args.residents:,} open popups of a full run at this scale; "
                         "run once without it")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE healthkit_popupcase; ANALYZE healthkit_popupevent; ANALYZE healthkit_arrival; "
                       "ANALYZE healthkit_testresult")
    from bench.report import load_average

    print(f"load average before: {load_average()}")
    comparisons = compare_sweeps(args, last.at + dt.timedelta(seconds=60))
    report_sweeps(comparisons, open_popups, args)
    if not args.skip_latency:
        print_latency(bench_latency(args), args)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def ingest_only(args, now: dt.datetime) -> None:
    from django.db import connection

    from communities.models import Resident

    expected = args.residents + fresh_count(args)
    if Resident.objects.count() != expected:
        raise SystemExit(f"--ingest-only needs the {expected:,} residents of a full run at this scale; "
                         "run once without it")
    with connection.cursor() as cursor:
        t = step("emptying the result and batch tables")
        cursor.execute("TRUNCATE healthkit_testresult, healthkit_ingestbatch")
        cursor.execute("DROP TABLE IF EXISTS bench_raw_results")
        cursor.execute("ANALYZE communities_resident")
        print(f"    {time.perf_counter() - t:.1f} s")
    ingest_rate, copy_rate, direct_rate = bench_ingest(args, now)
    purged = purge_queue()
    print(f"    purged {purged:,} evaluation tasks queued by the ingest (no worker was running)")
    print()
    print(f"scale: {args.residents:,} residents, {args.results:,} results (ingest only)")
    print(f"result ingest (real path):  {ingest_rate:>10,.0f} rows/s")
    print(f"raw COPY, bare table:       {copy_rate:>10,.0f} rows/s")
    print(f"ratio ingest / raw COPY:    {ingest_rate / copy_rate:>10.2f}   (aim >= 0.5)")
    print(f"ceiling: COPY straight into the indexed result table, no validation: {direct_rate:,.0f} rows/s "
          f"({direct_rate / copy_rate:.2f} of raw COPY)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--results", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=300, help="negative results timed for event-to-lift")
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hk_bench"))
    parser.add_argument("--broker", default=os.environ.get(
        "BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"))
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--sweep-changes", type=int, default=10_000,
                        help="popups lifted in the second full-sweep-vs-reference comparison")
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed runs of each comparison")
    parser.add_argument("--ingest-only", action="store_true",
                        help="reuse the residents of an earlier full run at the same scale; time only the "
                             "result ingest against the raw COPY (the result and batch tables are emptied)")
    parser.add_argument("--sweep-only", action="store_true",
                        help="reuse the data of an earlier full run at the same scale; time only the full "
                             "sweep against its reference (nothing and --sweep-changes to lift) and, "
                             "unless --skip-latency, event-to-lift")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ["CELERY_BROKER_URL"] = args.broker
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthkit.settings")
    os.environ["DJANGO_DEBUG"] = "false"  # as in production: DEBUG keeps every query and wraps every cursor
    ensure_database(args.database_url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from healthkit import engine
    from healthkit.models import PopupCase

    t = step("migrate")
    call_command("migrate", verbosity=0)
    print(f"    {time.perf_counter() - t:.1f} s")
    now = dt.datetime.now(dt.UTC)
    if args.ingest_only:
        ingest_only(args, now)
        return
    if args.sweep_only:
        sweep_only(args)
        return
    build(args, now)

    t = step(f"first sweep: raises the {args.residents:,} type-4 popups (deadline passed, no negative)")
    first = engine.sweep(full=True)
    while first.more:  # a run stops starting chunks after its time budget; the next goes on
        first = first + engine.sweep()
    raise_time = time.perf_counter() - t
    print(f"    {raise_time:.1f} s, {first}")

    with connection.cursor() as cursor:  # (autovacuum may be off)
        cursor.execute("ANALYZE healthkit_popupcase; ANALYZE healthkit_popupevent")

    ingest_rate, copy_rate, direct_rate = bench_ingest(args, now)

    open_popups = PopupCase.objects.filter(state__in=PopupCase.OPEN_STATES).count()
    sweep_at = dt.datetime.now(dt.UTC)
    add_fresh_arrivals(args, deadline=sweep_at + dt.timedelta(seconds=30))
    t = step(f"full sweep over {open_popups:,} open popups (everyone re-evaluated)")
    sweep = engine.sweep(at=sweep_at, full=True)
    sweep_time = time.perf_counter() - t
    print(f"    {sweep_time:.1f} s, {sweep}")
    t = step(f"due sweep 60 s later: {fresh_count(args):,} type-4 deadlines passed meanwhile")
    due = engine.sweep(at=sweep_at + dt.timedelta(seconds=60))
    due_time = time.perf_counter() - t
    print(f"    {due_time:.2f} s, {due}")

    comparisons = compare_sweeps(args, sweep_at + dt.timedelta(seconds=60))
    report_sweeps(comparisons, open_popups, args)  # printed now too: the latency part can be long

    latencies = [] if args.skip_latency else bench_latency(args)

    print()
    print(f"scale: {args.residents:,} residents, {open_popups:,} open popups, {args.results:,} results")
    print(f"result ingest (real path):  {ingest_rate:>10,.0f} rows/s")
    print(f"raw COPY, bare table:       {copy_rate:>10,.0f} rows/s")
    print(f"ratio ingest / raw COPY:    {ingest_rate / copy_rate:>10.2f}   (aim >= 0.5)")
    print(f"ceiling: COPY straight into the indexed result table, no validation: {direct_rate:,.0f} rows/s "
          f"({direct_rate / copy_rate:.2f} of raw COPY)")
    print(f"first sweep (raising):      {raise_time:>10.1f} s")
    print(f"full sweep over open:       {sweep_time:>10.1f} s   (aim: seconds; every ENGINE_FULL_SWEEP_HOURS)")
    report_sweeps(comparisons, open_popups, args)
    print(f"due sweep (every minute):   {due_time:>10.2f} s   ({due.raised:,} raised)")
    print_latency(latencies, args)


def print_latency(latencies: list[float], args) -> None:
    if latencies:
        from bench.report import load_average

        finite = [x for x in latencies if x != float("inf")]
        print(f"event-to-lift, {len(latencies)} samples, {args.worker_concurrency}-process worker, "
              f"broker {urlsplit(args.broker).scheme}:")
        print(f"    p50 {percentile(latencies, 0.5) * 1000:,.0f} ms   p99 {percentile(latencies, 0.99) * 1000:,.0f} ms"
              f"   max {max(latencies) * 1000:,.0f} ms   mean {statistics.mean(finite) * 1000:,.0f} ms"
              f"   timeouts {len(latencies) - len(finite)}   (aim p99 < 5 s; load {load_average()})")


if __name__ == "__main__":
    main()
