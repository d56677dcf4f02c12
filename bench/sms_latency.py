"""One-time code SMS latency while a burst of link SMS is being sent.

    .venv/bin/python bench/sms_latency.py                    # 1,000 links, 60 codes, 60 ms per send
    .venv/bin/python bench/sms_latency.py --links 200 --codes 20 --send-ms 60

A resident waiting for a one-time code must not wait behind bulk link SMS. This starts real
Celery workers with the project's queue layout (`worker_layout()`: the workers and queues
`scripts/dev.py run` starts, routing as in CELERY_TASK_ROUTES and healthkit/queues.py),
queues `--links` link SMS in one transaction (as a clearance sweep does), then asks for a code
every `--code-every` seconds through the real service (`appeals.services.identity_code_send`),
and reads each code's latency from the database: `sent_at` minus the moment its transaction
committed. The SMS gateway is simulated in the workers (`SlowGateway`: `--send-ms` per
message, the real gateway's median was 0.06 s).

The database named in DATABASE_URL (default hk_bench_sms) is DROPPED and re-created: point it at
a dedicated database only. The broker is Redis database `--redis-db` (default 11), purged first.
Prints p50/p99/max of the code latency, the burst's duration and throughput, and the p99 against
its aim (1 s) through `bench/report.py` (a `RESULT` line for `bench/run_all.py`).
"""

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hk_bench_sms")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthkit.settings")
os.environ["DJANGO_DEBUG"] = "false"  # as in production: DEBUG keeps every query and wraps every cursor
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"


class SlowGateway:
    """A gateway that takes `BENCH_SMS_SEND_MS` per message (the worker side of the bench)."""

    def send(self, *, phone: str, body: str, idempotency_key: str) -> str:
        time.sleep(int(os.environ.get("BENCH_SMS_SEND_MS", "60")) / 1000)
        return f"bench-{idempotency_key}"[:64]


def worker_layout() -> list[tuple[str, int]]:
    """(queues, concurrency) per worker, exactly as `scripts/dev.py run` starts them (its
    `WORKERS`: one worker per queue group, docs/operations.md), else one worker with two slots
    on every queue (what the project ran before queues were split)."""
    try:
        from scripts import dev
    except ImportError:
        dev = None
    layout = getattr(dev, "WORKERS", None)
    if layout:
        return [(queues, int(concurrency)) for _name, queues, concurrency in layout]
    from healthkit.queues import QUEUES

    return [(",".join(QUEUES), 2)]


def _reset_database() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"],
                         password=db["PASSWORD"] or None, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db["NAME"]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def _id_number(n: int) -> str:
    from communities import pii

    first17 = f"110105{1980 + n % 30}{(n % 12) + 1:02d}{(n % 28) + 1:02d}{n % 1000:03d}"
    return first17 + pii.id_check_digit(first17)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--links", type=int, default=1000)
    parser.add_argument("--codes", type=int, default=60)
    parser.add_argument("--code-every", type=float, default=0.25, help="seconds between code requests")
    parser.add_argument("--send-ms", type=int, default=60, help="simulated gateway time per SMS")
    parser.add_argument("--redis-db", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    broker = f"redis://127.0.0.1:6379/{args.redis_db}"
    os.environ["CELERY_BROKER_URL"] = broker
    os.environ["SMS_BACKEND"] = "bench.sms_latency.SlowGateway"
    os.environ["BENCH_SMS_SEND_MS"] = str(args.send_ms)
    os.environ.setdefault("CACHE_URL", "locmemcache://")

    import django

    django.setup()
    from django.core.management import call_command

    _reset_database()
    call_command("migrate", "--noinput", verbosity=0)

    import redis

    redis.Redis.from_url(broker).flushdb()  # a dedicated database: the bench's queues only

    from django.db import transaction
    from django.utils import timezone

    from appeals.services import identity_code_send
    from healthkit.models import SmsMessage
    from healthkit.sms import sms_enqueue

    layout = worker_layout()
    env = dict(os.environ)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "healthkit", "worker", "-Q", queues, f"--concurrency={slots}",
             "--loglevel=WARNING", "--without-gossip", "--without-mingle", "-n", f"bench{i}@%h"],
            cwd=ROOT, env=env)
        for i, (queues, slots) in enumerate(layout)
    ]
    try:
        time.sleep(6)  # workers connect
        site = "https://healthkit.example.gov.cn/clearance/r/"
        burst_start = time.time()
        with transaction.atomic():
            for i in range(args.links):
                sms_enqueue(phone=f"139{i:08d}", purpose="clearance_confirm",
                            idempotency_key=f"bench:link:{i}",
                            body=f"【12345】Your community asks you to confirm your details: {site}"
                                 f"{secrets.token_urlsafe(24)}.sig/ (valid 72 h, works once).")
        queued_at = time.time()
        codes: dict[str, float] = {}
        for n in range(args.codes):
            challenge = identity_code_send(name="王小明", id_number=_id_number(n), phone=f"137{n:08d}",
                                           ip=f"10.9.{n // 250}.{n % 250 + 1}")
            codes[f"appeal-code:{challenge.token}"] = time.time()
            time.sleep(args.code_every)
        deadline = time.time() + args.timeout
        while time.time() < deadline:
            pending = SmsMessage.objects.filter(sent_at__isnull=True).count()
            if pending == 0:
                break
            time.sleep(0.5)
        burst_end = SmsMessage.objects.filter(purpose="clearance_confirm").order_by("-sent_at").values_list(
            "sent_at", flat=True).first()
        sent = dict(SmsMessage.objects.filter(idempotency_key__in=list(codes), sent_at__isnull=False)
                    .values_list("idempotency_key", "sent_at"))
        latencies = [sent[k].timestamp() - t for k, t in codes.items() if k in sent]
        links_sent = SmsMessage.objects.filter(purpose="clearance_confirm", sent_at__isnull=False).count()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)

    print(f"workers: {', '.join(f'{q} x{s}' for q, s in layout)}; gateway {args.send_ms} ms per SMS")
    print(f"burst: {args.links} link SMS queued in {queued_at - burst_start:.2f} s; {links_sent} sent", end="")
    if burst_end is not None:
        took = burst_end.timestamp() - queued_at
        print(f", last sent {took:.1f} s after queueing ({links_sent / max(took, 1e-9):.0f} SMS/s)")
    else:
        print()
    if not latencies:
        print("code SMS: none sent before the timeout")
        return 1
    print(f"code SMS ({len(latencies)}/{len(codes)} sent, one every {args.code_every} s during the burst): "
          f"p50 {statistics.median(latencies):.3f} s, p99 {_percentile(latencies, 0.99):.3f} s, "
          f"max {max(latencies):.3f} s")
    print(f"measured at {timezone.now():%Y-%m-%d %H:%M} UTC")
    from bench.report import emit

    emit("one-time code SMS behind a burst of links, p99", project=_percentile(latencies, 0.99), reference=1.0,
         unit="s", ratio=_percentile(latencies, 0.99) / 1.0, aim="<= 1",
         scale=f"{args.links:,} link SMS, {len(latencies)} codes, gateway {args.send_ms} ms per SMS",
         reference_is="the aim, p99 1 s", p50_s=round(statistics.median(latencies), 3),
         links_sent=links_sent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
