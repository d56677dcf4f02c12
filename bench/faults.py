#!/usr/bin/env python
"""Fault scenarios against real processes (a script, not a test): loopback only, each bounded
in time. For each scenario it prints expected vs observed counts (lost, doubled, stuck) and the
catch-up time, and exits 1 on any difference.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hk_faults .venv/bin/python bench/faults.py
    ... --scenario kill,broker,db,beats,sms,sendkill   (default: all)
    ... --broker amqp://guest:guest@127.0.0.1:5672/healthkit-faults   (default; the vhost is
        created with rabbitmqctl when missing) or redis://127.0.0.1:6379/<a free db number>

Scenarios (docs/operations.md reads their figures):
- kill:   a stream of ingest events (negative results lifting type-4 popups) while the engine
          worker is SIGKILLed mid-stream and started again.
- broker: ingest through the REST API while the broker refuses connections for --down seconds
          (the API must answer 200; the every-minute job must lift everything afterwards).
- db:     the database connection of a running engine-work sweep is terminated
          (pg_terminate_backend, only this database's backends: the shared server is never
          restarted); the next run must finish the work.
- beats:  two workers (all queues) and two real beats at once over due SMS, outbox deliveries
          and engine work: nothing sent twice, nothing left.
- sms:    the SMS gateway (a local stub) times out, then answers 500, then recovers, while a
          one-time code is sent on its own queue.
- sendkill: the worker sending SMS and outbox deliveries is SIGKILLed with requests in flight
          and started again.

Beat ticks: where a scenario needs the periodic jobs it publishes them itself every --tick
seconds (default 10; beat runs them every 15-60 s), so the catch-up times printed are those of
the tick; in production add the beat interval (docs/operations.md).
The database is created if missing and migrated; its tables are emptied: point it at a
dedicated database.
"""

import argparse
import atexit
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672/healthkit-faults"
FAILED = []


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def ensure_vhost(broker: str) -> None:
    parts = urlsplit(broker)
    if parts.scheme != "amqp" or parts.path in ("", "/", "//"):
        return
    vhost = parts.path.lstrip("/")
    listed = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True, check=False)
    if vhost not in listed.stdout.split():
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, parts.username or "guest",
                        ".*", ".*", ".*"], check=True)


def report(name: str, expected: dict, observed: dict, catch_up: float | None) -> None:
    ok = expected == observed
    if not ok:
        FAILED.append(name)
    took = "never" if catch_up is None else f"{catch_up:.1f} s"
    print(f"{name:8} expected {json.dumps(expected)}  observed {json.dumps(observed)}  "
          f"caught up in {took}  {'OK' if ok else 'DIFFERENT'}", flush=True)


# --- processes -------------------------------------------------------------------------------


class Workers:
    """Celery workers and beats as child processes (each its own process group). Every one
    still running is stopped when the script exits, however it exits (no orphans consuming
    the next run's messages)."""

    running: list["Workers"] = []

    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.procs = env, []
        Workers.running.append(self)

    @classmethod
    def stop_all(cls) -> None:
        for group in cls.running:
            group.stop()
        for leftover in (ROOT / ".data").glob(f"faults-beat-{os.getpid()}-*"):
            leftover.unlink(missing_ok=True)  # the beats' schedule files

    def worker(self, name: str, queues: str, concurrency: int = 2) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "healthkit", "worker", "-Q", queues, "-n", f"{name}@faults",
             f"--concurrency={concurrency}", "--loglevel=WARNING", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=self.env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def beat(self, n: int) -> subprocess.Popen:
        (ROOT / ".data").mkdir(exist_ok=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "healthkit", "beat", "--loglevel=WARNING",
             "-s", str(ROOT / ".data" / f"faults-beat-{os.getpid()}-{n}")],
            cwd=ROOT, env=self.env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool children at once (no warm shutdown, no ack)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill(proc)
        self.procs = []


class Stub(BaseHTTPRequestHandler):
    """SMS gateway / downstream endpoint stub: counts requests per Idempotency-Key; `mode` is
    ok, 500, slow (answers after 12 s: past the 10 s client timeout, after accepting),
    ok-for-codes (slow except for keys starting with "code-") or delay (accepts after `delay` s)."""

    def do_POST(self):  # noqa: N802 - http.server naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = self.headers.get("Idempotency-Key", "")
        server = self.server
        with server.lock:
            server.requests[key] = server.requests.get(key, 0) + 1
            mode = server.mode
        if mode == "500":
            self.send_response(500)
            self.end_headers()
            return
        if mode == "slow" or (mode == "ok-for-codes" and not key.startswith("code-")):
            time.sleep(12)
        if mode == "delay":
            time.sleep(server.delay)
        with server.lock:
            server.accepted.setdefault(key, 0)
            server.accepted[key] += 1
        body = json.dumps({"id": f"stub-{key}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class StubServer(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog (5) refuses bursts from several workers
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that timed out and left: expected here


def start_stub() -> ThreadingHTTPServer:
    server = StubServer(("127.0.0.1", 0), Stub)
    server.lock, server.requests, server.accepted, server.mode = threading.Lock(), {}, {}, "ok"
    server.delay = 0.0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- data ------------------------------------------------------------------------------------


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""SELECT string_agg(format('%I', tablename), ', ') FROM pg_tables
                          WHERE schemaname = 'public' AND (tablename LIKE 'healthkit_%' OR tablename LIKE 'clearance_%'
                             OR tablename LIKE 'appeals_%' OR tablename LIKE 'venues_%')
                            AND tablename NOT IN ('healthkit_popuppolicy', 'healthkit_popuptype')""")
        tables = cursor.fetchone()[0]
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")  # noqa: S608 - names from the catalogue
        cursor.execute("TRUNCATE communities_resident, communities_community, communities_street CASCADE")


def residents_with_popup_4(n: int) -> list:
    """n residents, each with an arrival 4 days ago and so an open type-4 popup."""
    from django.utils import timezone

    from healthkit import engine
    from tests.factories import ResidentFactory
    from tests.factories.healthkit import ArrivalFactory

    then = timezone.now() - dt.timedelta(days=4)
    people = [ResidentFactory() for _ in range(n)]
    for person in people:
        ArrivalFactory(resident=person, arrived_at=then, received_at=then)
    engine.evaluate(resident_ids=[p.pk for p in people])
    return people


def negative(person, sample: str) -> dict:
    from django.utils import timezone

    now = timezone.now()
    return {"id_number": person.reveal_id_number(), "lab": "faults", "sample_id": sample,
            "sampled_at": (now - dt.timedelta(hours=3)).isoformat(),
            "resulted_at": (now - dt.timedelta(hours=1)).isoformat(), "result": "negative"}


def popup_counts(people) -> dict:
    from healthkit.models import PopupCase, PopupEvent

    ids = [p.pk for p in people]
    cases = PopupCase.objects.filter(resident_id__in=ids, popup_type=4)
    lifted = cases.filter(state="lifted").count()
    lift_events = PopupEvent.objects.filter(case__in=cases, to_state="lifted").count()
    doubled = (cases.count() - len(ids)) + max(0, lift_events - lifted)
    return {"lost": len(ids) - lifted, "doubled": doubled}


def wait_until(done, *, timeout: float, tick: float = 0.0, publish=None) -> float | None:
    """Poll `done()` until true (returns seconds) or timeout (None); publish beat jobs each tick."""
    started = last = time.monotonic()
    while time.monotonic() - started < timeout:
        if done():
            return time.monotonic() - started
        if publish and time.monotonic() - last >= tick:
            publish()
            last = time.monotonic()
        time.sleep(0.5)
    return None


def tick_jobs() -> None:
    from healthkit import tasks

    tasks.engine_work_due.delay()
    tasks.sms_deliver_due.delay()
    tasks.outbox_dispatch_due.delay()


# --- scenarios -------------------------------------------------------------------------------


def scenario_kill(env, args) -> None:
    from healthkit import ingest

    people = residents_with_popup_4(args.events)
    workers = Workers(env)
    engine = workers.worker("engine", "engine", 1)
    time.sleep(3)
    started = time.monotonic()
    killed = False
    for i, person in enumerate(people):
        ingest.ingest(kind="test_results", records=[negative(person, f"K{i}")], batch_id=f"kill-{i}")
        if not killed and i >= len(people) // 3:
            Workers.kill(engine)  # mid-stream: tasks in flight and in the queue
            killed = True
            workers.worker("engine2", "engine", 1)
    workers.worker("sweeps", "sweeps", 1)
    took = wait_until(lambda: popup_counts(people)["lost"] == 0, timeout=args.timeout, tick=args.tick,
                      publish=tick_jobs)
    workers.stop()
    counts = popup_counts(people)
    report("kill", {"lost": 0, "doubled": 0, "stuck": 0}, {**counts, "stuck": int(took is None)},
           None if took is None else time.monotonic() - started)


def scenario_broker(env, args) -> None:
    """Ingest through the API in a child process whose broker refuses connections."""
    people = residents_with_popup_4(args.events)
    down_env = {**env, "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",
                "CELERY_BROKER_CONNECTION_TIMEOUT": "1"}
    child = subprocess.run(
        [sys.executable, __file__, "--_ingest-api", ",".join(str(p.pk) for p in people), "--down", str(args.down)],
        cwd=ROOT, env=down_env, capture_output=True, text=True, check=False)
    statuses = json.loads(child.stdout.strip().splitlines()[-1]) if child.stdout.strip() else {"error": child.stderr[-500:]}
    back = time.monotonic()
    workers = Workers(env)
    workers.worker("engine", "engine", 1)
    workers.worker("sweeps", "sweeps", 1)
    took = wait_until(lambda: popup_counts(people)["lost"] == 0, timeout=args.timeout, tick=args.tick,
                      publish=tick_jobs)
    workers.stop()
    counts = popup_counts(people)
    report("broker", {"lost": 0, "doubled": 0, "stuck": 0, "api_not_200": 0},
           {**counts, "stuck": int(took is None), "api_not_200": statuses.get("not_200", -1)},
           None if took is None else time.monotonic() - back)


def ingest_api_child(ids: str, down: float) -> None:
    """(child) POST one negative result per resident through the API for `down` seconds."""
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from communities.models import Resident, User

    user, _ = User.objects.get_or_create(username="faults-lab", defaults={
        "role": User.Role.INTEGRATION, "feeds": [User.Feed.TEST_RESULTS]})
    token, _ = Token.objects.get_or_create(user=user)
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token.key}")
    people = list(Resident.objects.filter(pk__in=[int(i) for i in ids.split(",")]).order_by("pk"))
    pause = down / max(1, len(people))
    not_200 = 0
    for i, person in enumerate(people):
        response = client.post("/api/v1/ingest/test-results/", {"batch_id": f"down-{i}",
                               "records": [negative(person, f"D{i}")]}, content_type="application/json")
        not_200 += response.status_code != 200
        time.sleep(pause)
    print(json.dumps({"not_200": not_200}))


def scenario_db(env, args) -> None:
    from django.db import OperationalError, close_old_connections, connection
    from django.utils import timezone

    from healthkit import engine_work
    from healthkit.models import EngineWork, TestResult
    from tests.factories import TestResultFactory

    people = residents_with_popup_4(args.events)
    now = timezone.now()
    for person in people:
        TestResultFactory(resident=person, sampled_at=now - dt.timedelta(hours=3), resulted_at=now,
                          received_at=now, result=TestResult.Outcome.NEGATIVE)
    EngineWork.objects.bulk_create(EngineWork(resident_ids=[p.pk], created_at=now - dt.timedelta(minutes=5))
                                   for p in people)
    outcome = {}

    def sweep():
        try:
            outcome["first"] = engine_work.evaluate_due(max_chunks=1000)
        except OperationalError as exc:
            outcome["first"] = f"failed: {type(exc).__name__}"
        finally:
            connection.close()

    from healthkit import engine

    slow = engine.evaluate

    def evaluate_slowly(**kwargs):  # widen the window so the kill lands inside the sweep
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(0.5)")
        return slow(**kwargs)

    engine.evaluate = evaluate_slowly
    thread = threading.Thread(target=sweep)
    thread.start()
    time.sleep(0.3)
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("""SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                          WHERE datname = %s AND pid <> pg_backend_pid() AND state <> 'idle'""", [name])
        terminated = cursor.fetchone()[0]
    thread.join()
    engine.evaluate = slow
    close_old_connections()
    started = time.monotonic()
    second = engine_work.evaluate_due(max_chunks=1000)  # the next minute's run
    took = time.monotonic() - started
    counts = popup_counts(people)
    print(f"db       terminated {terminated} backend(s); first run: {outcome.get('first')}; next run evaluated {second}")
    report("db", {"lost": 0, "doubled": 0, "stuck": 0},
           {**counts, "stuck": EngineWork.objects.count()}, took)


def scenario_beats(env, args) -> None:
    from django.utils import timezone

    from communities import pii
    from healthkit import sms
    from healthkit.models import (
        DownstreamEndpoint,
        EngineWork,
        OutboxDelivery,
        SmsMessage,
        TestResult,
    )
    from tests.factories import TestResultFactory, make_phone

    stub = start_stub()
    url = f"http://127.0.0.1:{stub.server_address[1]}"
    env = {**env, "SMS_BACKEND": "healthkit.sms.HttpBackend", "SMS_HTTP_URL": f"{url}/sms"}
    DownstreamEndpoint.objects.create(name="rail", url=f"{url}/rail", token="stub", active=True)  # noqa: S106 - a local stub
    people = residents_with_popup_4(args.events)  # raises write outbox deliveries too
    now = timezone.now()
    for person in people:
        TestResultFactory(resident=person, sampled_at=now - dt.timedelta(hours=3), resulted_at=now,
                          received_at=now, result=TestResult.Outcome.NEGATIVE)
    EngineWork.objects.bulk_create(EngineWork(resident_ids=[p.pk], created_at=now - dt.timedelta(minutes=5))
                                   for p in people)
    for i in range(args.events):  # queued, never published: only the beat jobs can send them
        SmsMessage.objects.create(idempotency_key=f"beats-{i}", purpose="clearance_confirm",
                                  phone_encrypted=pii.encrypt(make_phone()),
                                  phone_masked="138****0000", body="x", next_attempt_at=now)
    assert sms.sms_due_ids()
    workers = Workers(env)
    for n in (1, 2):
        workers.worker(f"all{n}", "codes,engine,notifications,outbox,sweeps", 2)
    time.sleep(2)
    started = time.monotonic()
    for n in (1, 2):
        workers.beat(n)

    def done():
        return (not EngineWork.objects.exists()
                and not SmsMessage.objects.exclude(state="sent").exists()
                and not OutboxDelivery.objects.exclude(state="delivered").exists())

    took = wait_until(done, timeout=args.timeout)
    workers.stop()
    counts = popup_counts(people)
    sms_keys = [k for k in stub.requests if k.startswith("beats-")]
    sms_doubled = sum(n - 1 for k, n in stub.requests.items() if k.startswith("beats-"))
    outbox_keys = [k for k in stub.requests if k.startswith("popup-")]
    outbox_doubled = sum(n - 1 for k, n in stub.requests.items() if k.startswith("popup-"))
    expected_outbox = OutboxDelivery.objects.count()
    report("beats", {"lost": 0, "doubled": 0, "stuck": 0, "sms_lost": 0, "sms_doubled": 0,
                     "outbox_lost": 0, "outbox_doubled": 0},
           {**counts, "stuck": int(took is None), "sms_lost": args.events - len(sms_keys), "sms_doubled": sms_doubled,
            "outbox_lost": expected_outbox - len(outbox_keys), "outbox_doubled": outbox_doubled},
           None if took is None else time.monotonic() - started)
    stub.shutdown()


def scenario_sms(env, args) -> None:
    """Link SMS while the gateway first times out (accepting the request but answering after the
    client's 10 s timeout), then answers 500, then recovers; meanwhile a one-time code is sent on
    its own queue."""
    from django.db import transaction

    from healthkit import sms
    from healthkit.models import SmsMessage
    from tests.factories import make_phone

    stub = start_stub()
    stub.mode = "slow"
    env = {**env, "SMS_BACKEND": "healthkit.sms.HttpBackend",
           "SMS_HTTP_URL": f"http://127.0.0.1:{stub.server_address[1]}/sms",
           "SMS_GATEWAY_DEDUPLICATES": "true" if args.gateway_dedupes else "false"}
    workers = Workers(env)
    workers.worker("bulk", "notifications", 4)
    workers.worker("codes", "codes", 1)
    workers.worker("sweeps", "sweeps", 1)
    time.sleep(3)
    n = args.sms_events
    started = time.monotonic()
    with transaction.atomic():
        for i in range(n):
            sms.sms_enqueue(phone=make_phone(), body="link", purpose="clearance_confirm", idempotency_key=f"sms-{i}")
    time.sleep(2)
    stub.mode = "ok-for-codes"  # the code below goes through; links still time out
    code_at = time.monotonic()
    code = sms.sms_enqueue(phone=make_phone(), body="code 123456", purpose="appeal_code", idempotency_key="code-1")
    code_took = wait_until(lambda: SmsMessage.objects.filter(pk=code.pk, state="sent").exists(), timeout=30)
    stub.mode = "slow"
    time.sleep(max(0.0, args.sms_down / 2 - (time.monotonic() - started)))
    stub.mode = "500"
    time.sleep(args.sms_down / 2)
    stub.mode = "ok"
    recovered = time.monotonic()
    # Without a de-duplicating gateway an unknown outcome is held (dead, "outcome unknown") for a
    # person: it is neither lost nor stuck, and must not be sent again.
    pending = SmsMessage.objects.exclude(state="sent").exclude(state="dead", last_error__startswith="outcome unknown")
    took = wait_until(lambda: not pending.exists(), timeout=args.timeout, tick=args.tick, publish=tick_jobs)
    workers.stop()
    held = set(SmsMessage.objects.filter(state="dead", last_error__startswith="outcome unknown")
               .values_list("idempotency_key", flat=True))
    texts = {k: c for k, c in stub.accepted.items() if k.startswith("sms-")}
    extra_requests = sum(c - 1 for k, c in stub.requests.items() if k.startswith("sms-"))
    twice = sum(1 for c in texts.values() if c > 1)
    print(f"sms      one-time code sent {'never' if code_took is None else f'{code_took:.1f} s'} after it was "
          f"queued while the link SMS were timing out ({code_at - started:.0f} s into the outage)")
    print(f"sms      gateway requests beyond one per link: {extra_requests}, all with the message's own key; "
          f"links a gateway that does not de-duplicate would have delivered twice: {twice}")
    if held:
        print(f"sms      held for a person (outcome unknown, not re-sent): {len(held)}")
    report("sms", {"lost": 0, "doubled": 0, "stuck": 0, "code_late": 0},
           {"lost": n - len(set(texts) | held), "doubled": 0 if args.gateway_dedupes else twice,
            "stuck": pending.count(), "code_late": int(code_took is None or code_took > 5)},
           None if took is None else time.monotonic() - recovered)
    print(f"sms      outage {recovered - started:.0f} s ({args.sms_down / 2:.0f} s timeouts, then 500s), "
          f"{n} link SMS")
    stub.shutdown()


def scenario_sendkill(env, args) -> None:
    """The worker sending SMS and outbox deliveries SIGKILLed while requests are in flight (the
    gateway and the endpoint take 3 s to answer), then started again: nothing lost, and what the
    far side received twice carried the same key (the window the lease leaves: a request that
    reached the far side before the kill is sent again after the 60 s lease)."""
    from healthkit.models import DownstreamEndpoint, OutboxDelivery, SmsMessage
    from healthkit.sms import sms_enqueue
    from tests.factories import make_phone

    stub = start_stub()
    stub.mode, stub.delay = "delay", 3.0
    url = f"http://127.0.0.1:{stub.server_address[1]}"
    env = {**env, "SMS_BACKEND": "healthkit.sms.HttpBackend", "SMS_HTTP_URL": f"{url}/sms",
           "SMS_GATEWAY_DEDUPLICATES": "true" if args.gateway_dedupes else "false"}
    DownstreamEndpoint.objects.create(name="rail", url=f"{url}/rail", token="stub", active=True)  # noqa: S106 - a local stub
    n = args.sms_events
    residents_with_popup_4(n)  # each raise writes an outbox delivery (published on commit)
    for i in range(n):
        sms_enqueue(phone=make_phone(), body="link", purpose="clearance_confirm", idempotency_key=f"kill-sms-{i}")
    workers = Workers(env)
    senders = [workers.worker("sms", "notifications", 2), workers.worker("outbox", "outbox", 1)]
    started = time.monotonic()

    def both_in_flight() -> bool:
        keys = list(stub.requests)
        return sum(k.startswith("kill-sms-") for k in keys) >= 2 and any(k.startswith("popup-") for k in keys)

    in_flight = wait_until(both_in_flight, timeout=60)
    for sender in senders:
        Workers.kill(sender)
    killed_with = dict(stub.requests)
    workers.worker("sms2", "notifications", 2)
    workers.worker("outbox2", "outbox", 1)
    workers.worker("sweeps", "sweeps", 1)
    stub.delay = 0.2

    def done():
        return (not SmsMessage.objects.exclude(state="sent").exclude(
                    state="dead", last_error__startswith="outcome unknown").exists()
                and not OutboxDelivery.objects.exclude(state="delivered").exists())

    took = wait_until(done, timeout=args.timeout, tick=args.tick, publish=tick_jobs)
    workers.stop()
    held_keys = set(SmsMessage.objects.filter(state="dead", last_error__startswith="outcome unknown")
                    .values_list("idempotency_key", flat=True))
    held = len(held_keys)
    sms_keys = {k for k in stub.accepted if k.startswith("kill-sms-")}
    outbox_keys = {k for k in stub.accepted if k.startswith("popup-")}
    resent = {k: c for k, c in stub.requests.items() if c > 1}
    print(f"sendkill killed with {len(killed_with)} request(s) in flight "
          f"({'never' if in_flight is None else f'{in_flight:.1f} s'} after the worker started); "
          f"sent again with the same key after the lease: {len(resent)} "
          f"(SMS {sum(1 for k in resent if k.startswith('kill-sms-'))}, "
          f"outbox {sum(1 for k in resent if k.startswith('popup-'))}); SMS held for a person: {held}")
    report("sendkill", {"sms_lost": 0, "outbox_lost": 0, "stuck": 0, "doubled_without_key": 0},
           {"sms_lost": n - len(sms_keys | held_keys), "outbox_lost": OutboxDelivery.objects.count() - len(outbox_keys),
            "stuck": int(took is None),
            "doubled_without_key": sum(1 for k in stub.requests if not k)},
           None if took is None else time.monotonic() - started)
    stub.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="kill,broker,db,beats,sms,sendkill")
    parser.add_argument("--broker", default=os.environ.get("FAULTS_BROKER", DEFAULT_BROKER))
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--down", type=float, default=60.0, help="broker outage in seconds")
    parser.add_argument("--sms-down", type=float, default=40.0, help="SMS gateway outage (timeouts, then 500)")
    parser.add_argument("--sms-events", type=int, default=20, help="link SMS sent into the outage")
    parser.add_argument("--tick", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=240.0)
    parser.add_argument("--gateway-dedupes", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--_ingest-api", dest="ingest_api", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    atexit.register(Workers.stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # runs the atexit clean-up

    if args.ingest_api is None:
        ensure_database(os.environ["DATABASE_URL"])
        ensure_vhost(args.broker)
        os.environ["CELERY_BROKER_URL"] = args.broker
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthkit.settings")
    os.environ["DJANGO_DEBUG"] = "false"  # as in production: DEBUG keeps every query and wraps every cursor
    import django

    django.setup()
    if args.ingest_api is not None:
        ingest_api_child(args.ingest_api, args.down)
        return 0
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    env = {**os.environ, "CELERY_TASK_ALWAYS_EAGER": "false", "LOG_LEVEL": "WARNING"}
    scenarios = {"kill": scenario_kill, "broker": scenario_broker, "db": scenario_db, "beats": scenario_beats,
                 "sms": scenario_sms, "sendkill": scenario_sendkill}
    print(f"broker {urlsplit(args.broker)._replace(netloc=urlsplit(args.broker).hostname or '').geturl()}, "
          f"{args.events} events per scenario, tick {args.tick:.0f} s", flush=True)
    for name in args.scenario.split(","):
        reset()
        from healthkit.celery import app

        app.control.purge()
        scenarios[name](env, args)
    print("all as expected" if not FAILED else f"DIFFERENT: {', '.join(FAILED)}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
