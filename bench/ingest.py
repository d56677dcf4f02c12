#!/usr/bin/env python
"""Result ingest against a raw COPY (a script, not a test).

For batches of 10,000 nucleic-acid results (the API's per-request maximum), timed in the same
run, alternating batch by batch (the order rotates each round), best of --rounds:

- reference: the same rows, already parsed (Python tuples), COPY'd into a bare table (no index,
  constraint or key) and committed;
- service: `healthkit.ingest.ingest(kind="test_results", ...)` on the records as the JSON body
  carries them (validation, ID check and keyed hash, resident resolution, the COPY into the
  indexed result table, batch idempotency row, evaluation work and its tasks on commit);
- HTTP: the real endpoint `POST /api/v1/ingest/test-results/` through Django's test client with
  an integration user's token (middleware, authentication, JSON parsing, the service, the
  response), the body already encoded.

Each printed as rows/s with its ratio to the raw COPY (aims >= 0.5 and >= 0.4, issue 15).
`--clients 2` also times two client processes posting to the endpoint at once (the second
core), against the raw COPY on one connection: that figure is labelled as such and printed in
addition to the single-stream ones, never instead of them. `--reference-check` also times a
binary COPY + commit into two scratch copies of the result table, one with the resident foreign
key, one with the statement-level check that replaced it (migration 0016). `--one-connection`
also times the service with streaming off (the residents looked up on the same connection before
the COPY, as before healthkit.ingest._streamed_rows), alternating with the others.
`--repeated-key-check` also times the HTTP path with the JSON body's repeated-key check off
(healthkit.inputs._may_repeat_a_key), alternating with the others. `--split` prints
where one batch's time goes, part by part (Python parts, resident look-up, the COPY with the
result table's indexes and checks added one at a time, pending-evaluation rows), each the median
of --rounds; the parts overlap in the real path. `--residents-order random` names each batch's residents in no
order (as a lab's batch does) instead of in the order they were registered. `--order-check` times a binary COPY by the order of a batch's residents
(in sequence, in no order, sorted per look-up chunk, sorted over the batch), into the result
table and into a scratch copy whose unique key leads with the resident.
`--icu-locale en-US` creates the database with that ICU locale as its default collation (as on
a server initialised in a language's locale; this machine's databases default to C.UTF-8).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hk_bench_ingest \\
    .venv/bin/python bench/ingest.py --scale 0.1   # 100 k residents, 1 M results on record

The database is dropped and created anew (point it at a throw-away database), migrated, and
filled with --residents residents and --prefill results (COPY) so the indexes have a size.
Evaluation tasks go to the broker (--broker) and are purged at the end; no worker runs.
"""

import argparse
import datetime as dt
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DISTRICTS = ("110101", "110102", "110105", "110106", "110107", "110108", "110109", "110111",
             "110112", "110113", "110114", "110115", "110116", "110117", "110118", "110119")
PATH = "/api/v1/ingest/test-results/"
HOST = "127.0.0.1"


def id_number(i: int) -> str:
    """A unique, valid 18-character ID number for resident number i (deterministic)."""
    from communities.pii import id_check_digit

    birth = dt.date(1950, 1, 1) + dt.timedelta(days=(i // len(DISTRICTS)) % 20_000)
    seq = (i // (len(DISTRICTS) * 20_000)) % 1000
    first17 = f"{DISTRICTS[i % len(DISTRICTS)]}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_check_digit(first17)


# --residents-order: "sequence" names a batch's residents in the order they were registered,
# "random" in no order (as a lab's batch does; its sample ids still run in sequence per lab).
RESIDENTS_ORDER = "sequence"
_SCATTER = (48_271, 69_621, 16_807)  # multipliers: n -> n * m mod residents is a bijection if coprime


def resident_number(n: int, residents: int) -> int:
    """The resident (0-based) named by result number n; distinct for `residents` consecutive n."""
    if RESIDENTS_ORDER == "sequence":
        return n % residents
    m = next(m for m in _SCATTER if math.gcd(m, residents) == 1)
    return n * m % residents


def records_for(tag: str, first: int, count: int, residents: int, now: dt.datetime) -> list[dict]:
    """`count` negative results of distinct residents, as the JSON body carries them."""
    out = []
    for n in range(first, first + count):
        sampled = now - dt.timedelta(hours=30, seconds=n % 3600)
        out.append({
            "id_number": id_number(resident_number(n, residents)), "lab": f"lab-{n % 40:02d}", "sample_id": f"{tag}{n:010d}",
            "sampled_at": sampled.isoformat(), "resulted_at": (sampled + dt.timedelta(hours=6)).isoformat(),
            "result": "negative", "from_other_province": n % 50 == 0,
        })
    return out


def parsed_rows(records: list[dict], first: int, residents: int, now: dt.datetime) -> list[tuple]:
    """The same records as the rows a raw COPY writes (resident ids known: no look-up)."""
    return [(resident_number(first + k, residents) + 1, r["lab"], r["sample_id"], dt.datetime.fromisoformat(r["sampled_at"]),
             dt.datetime.fromisoformat(r["resulted_at"]), now, r["result"], r["from_other_province"])
            for k, r in enumerate(records)]


def build(args, now: dt.datetime) -> None:
    from django.core.management import call_command
    from django.db import connection

    from communities import pii

    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"... migrated ({time.perf_counter() - t:.1f} s)", flush=True)
    with connection.cursor() as cursor:
        t = time.perf_counter()
        with cursor.cursor.copy(
            "COPY communities_resident (name, id_encrypted, id_hash, id_masked, created_at) FROM STDIN"
        ) as copy:
            for i in range(args.residents):
                number = id_number(i)
                copy.write_row((f"居民{i}", pii.encrypt(number), pii.id_hash(number), pii.mask_id(number), now))
        print(f"... {args.residents:,} residents ({time.perf_counter() - t:.1f} s)", flush=True)
        t = time.perf_counter()
        cursor.execute(
            "INSERT INTO healthkit_testresult (resident_id, lab, sample_id, sampled_at, resulted_at, received_at, "
            "result, from_other_province) "
            "SELECT n %% %s + 1, 'lab-' || lpad((n %% 40)::text, 2, '0'), 'P' || lpad(n::text, 10, '0'), "
            "%s - make_interval(hours => 48 + n / %s), %s - make_interval(hours => 42 + n / %s), %s, "
            "'negative', false FROM generate_series(0, %s - 1) n",
            [args.residents, now, args.residents, now, args.residents, now, args.prefill],
        )
        cursor.execute(
            "CREATE TABLE bench_raw_results (resident_id bigint, lab varchar(64), sample_id varchar(64), "
            "sampled_at timestamptz, resulted_at timestamptz, received_at timestamptz, result varchar(8), "
            "from_other_province boolean)"
        )
        cursor.execute("ANALYZE communities_resident")
        cursor.execute("ANALYZE healthkit_testresult")
        print(f"... {args.prefill:,} results already on record ({time.perf_counter() - t:.1f} s)", flush=True)


class CpuMeter:
    """CPU seconds of this process and of its database backends (read from /proc: the database
    on this machine), per timed call: under load, wall time includes waiting for a core, CPU time
    much less so. The backends are this process's connection and the ingest's look-up connection
    (healthkit.ingest._lookup_connection), as they are when the call starts; a backend gone by the
    end (the HTTP path closes its connection per request) makes the figure nan."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def pids() -> list[int]:
        from django.db import connection

        from healthkit import ingest

        connection.ensure_connection()
        pids = [connection.connection.info.backend_pid]
        lookup = getattr(ingest._lookups, "connection", None)
        if lookup is not None and not lookup.closed:
            pids.append(lookup.info.backend_pid)
        return pids

    def backend(self, pids: list[int]) -> float:
        total = 0.0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # the database runs elsewhere, or the backend ended
                return float("nan")
            total += (int(fields[11]) + int(fields[12])) / self.tick
        return total

    def run(self, fn) -> tuple[float, float, float]:
        """(wall, client CPU, database CPU) seconds of fn()."""
        pids = self.pids()
        if len(pids) == 1:  # the look-up connection is opened by the first streamed batch
            from healthkit import ingest

            ingest._lookup_connection()
            pids = self.pids()
        db0, cpu0 = self.backend(pids), time.process_time()
        wall = fn()
        return wall, time.process_time() - cpu0, self.backend(pids) - db0


def integration_token() -> str:
    from rest_framework.authtoken.models import Token

    from communities.models import User

    user, _ = User.objects.get_or_create(username="bench-lab-feed", defaults={
        "role": User.Role.INTEGRATION, "feeds": [User.Feed.TEST_RESULTS]})
    return Token.objects.get_or_create(user=user)[0].key


def time_raw(rows: list[tuple]) -> float:
    from django.db import connection, transaction

    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(
        "COPY bench_raw_results (resident_id, lab, sample_id, sampled_at, resulted_at, received_at, result, "
        "from_other_province) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)
    return time.perf_counter() - t0


def time_service(records: list[dict], batch_id: str, *, stream: bool = True) -> float:
    from healthkit import ingest

    streams_from = ingest.STREAM_MIN
    if not stream:  # the one-connection way (as before streaming), for --one-connection
        ingest.STREAM_MIN = ingest.MAX_RECORDS
    try:
        t0 = time.perf_counter()
        result = ingest.ingest(kind="test_results", records=records, batch_id=batch_id)
        elapsed = time.perf_counter() - t0
    finally:
        ingest.STREAM_MIN = streams_from
    if result.rejected or result.accepted != len(records):
        raise SystemExit(f"the service refused records: {result.rejected[:3]} accepted={result.accepted}")
    return elapsed


def http_client():
    from django.test import Client

    return Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Token {integration_token()}", HTTP_ACCEPT_LANGUAGE="en")


def time_http(client, body: bytes, expected: int) -> float:
    t0 = time.perf_counter()
    response = client.post(PATH, data=body, content_type="application/json")
    elapsed = time.perf_counter() - t0
    answer = json.loads(response.content) if response.status_code == 200 else None
    if answer is None or answer["accepted"] != expected:
        raise SystemExit(f"the endpoint answered {response.status_code}: {response.content[:300]!r}")
    return elapsed


def time_http_unchecked(client, body: bytes, expected: int) -> float:
    """time_http with the orjson path's repeated-key check (healthkit.inputs._may_repeat_a_key)
    switched off: what the check costs, alternated with the real endpoint (--repeated-key-check)."""
    from healthkit import inputs

    checked = inputs._may_repeat_a_key
    inputs._may_repeat_a_key = lambda body, data: False
    try:
        return time_http(client, body, expected)
    finally:
        inputs._may_repeat_a_key = checked


def _client_process(bodies: list[bytes], expected: int, start: "multiprocessing.synchronize.Event",
                    out: "multiprocessing.Queue") -> None:
    """One client of the concurrent figure: its own process and database connection."""
    import django

    django.setup()
    client = http_client()
    start.wait()
    t0 = time.perf_counter()
    for body in bodies:
        time_http(client, body, expected)
    out.put((t0, time.perf_counter()))


def concurrent_http(bodies: list[list[bytes]], expected: int) -> float:
    """Rows/s of len(bodies) client processes posting at once (wall time of the whole)."""
    from django.db import connections

    from healthkit import ingest

    connections.close_all()
    ingest.close_lookup_connection()
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_client_process, args=(b, expected, start, out)) for b in bodies]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let both import and connect before the start
    start.set()
    spans = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode:
            raise SystemExit("a client process failed")
    rows = sum(len(b) for b in bodies) * expected
    return rows / (max(end for _s, end in spans) - min(begin for begin, _e in spans))


def reference_check_comparison(rounds: int, batch: int, residents: int, now: dt.datetime) -> None:
    """The resident reference, checked two ways on two scratch copies of the result table (same
    columns and indexes): Django's deferrable foreign key (checked row by row at commit) and the
    statement-level check of migration 0016; binary COPY of `batch` rows + commit, alternating,
    best of `rounds`."""
    from django.db import connection, transaction

    types = ["int8", "varchar", "varchar", "timestamptz", "timestamptz", "varchar", "bool", "timestamptz"]
    columns = "resident_id, lab, sample_id, sampled_at, resulted_at, result, from_other_province, received_at"
    with connection.cursor() as cursor:
        for table, reference in (("bench_ref_fk", "REFERENCES communities_resident DEFERRABLE INITIALLY DEFERRED"),
                                 ("bench_ref_statement", "")):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TABLE {table} (LIKE healthkit_testresult INCLUDING DEFAULTS INCLUDING "
                           "CONSTRAINTS INCLUDING INDEXES INCLUDING IDENTITY)")
            if reference:
                cursor.execute(f"ALTER TABLE {table} ADD FOREIGN KEY (resident_id) {reference}")
        cursor.execute("CREATE TRIGGER bench_ref_statement_insert AFTER INSERT ON bench_ref_statement REFERENCING "
                       "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION healthkit_result_resident_check()")
    best = {"bench_ref_fk": float("inf"), "bench_ref_statement": float("inf")}
    for rnd in range(rounds):
        for table in (list(best) if rnd % 2 == 0 else list(best)[::-1]):
            rows = [((rnd * batch + k) % residents + 1, f"lab-{k % 40:02d}", f"R{rnd}-{k}", now, now, "negative",
                     False, now) for k in range(batch)]
            t0 = time.perf_counter()
            with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(
                f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
            best[table] = min(best[table], time.perf_counter() - t0)
    from bench.report import load_average

    print(f"    resident reference, binary COPY of {batch:,} results + commit, best of {rounds}: "
          f"foreign key {best['bench_ref_fk'] * 1000:.0f} ms, statement check (0016) "
          f"{best['bench_ref_statement'] * 1000:.0f} ms  [load {load_average()}]", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_ref_fk, bench_ref_statement")


class _Rollback(Exception):
    pass


def _median_ms(fn, rounds: int) -> float:
    """Median wall time of fn(round) in ms over `rounds` calls, each in a transaction rolled back
    (the median: under load the best of a part is as noisy as the part is short)."""
    from django.db import transaction

    took = []
    for rnd in range(rounds):
        try:
            with transaction.atomic():
                t0 = time.perf_counter()
                fn(rnd)
                took.append((time.perf_counter() - t0) * 1000)
                raise _Rollback
        except _Rollback:
            pass
    return statistics.median(took)


def split(rounds: int, batch: int, residents: int, now: dt.datetime) -> None:
    """Where one batch's time goes, part by part (each the median of `rounds`, rolled back): the
    Python parts on the records, the resident look-up, and a binary COPY into a scratch copy of
    the result table filled like it, its indexes and the resident check added one at a time."""
    import orjson
    from django.conf import settings
    from django.db import connection

    from bench.report import load_average
    from healthkit import engine_work, ingest
    from healthkit.inputs import _may_repeat_a_key

    first = 50_000_000
    batches = [records_for(f"X{r}-", first + r * batch, batch, residents, now) for r in range(rounds)]
    bodies = [json.dumps({"records": recs}).encode() for recs in batches]
    decoded = [orjson.loads(body) for body in bodies]
    key, today = settings.PII_HASH_KEY.encode(), f"{dt.date.today():%Y%m%d}"
    ingest.refresh_year_window()
    id_and_hash = ingest._id_checker(key, today)  # as the service checks a batch's ID numbers
    hashes = [[id_and_hash(r["id_number"])[1] for r in recs] for recs in batches]
    rows = [[(resident_number(first + r * batch + k, residents) + 1, rec["lab"], rec["sample_id"],
              dt.datetime.fromisoformat(rec["sampled_at"]), dt.datetime.fromisoformat(rec["resulted_at"]),
              rec["result"], rec["from_other_province"], now) for k, rec in enumerate(recs)]
            for r, recs in enumerate(batches)]
    parse = ingest.test_result_parser(now)  # as the service parses a batch of results
    parts: list[tuple[str, float]] = [
        ("JSON body decoded (orjson; HTTP only)", _median_ms(lambda r: orjson.loads(bodies[r]), rounds)),
        ("JSON repeated-key check (HTTP only)", _median_ms(
            lambda r: _may_repeat_a_key(bodies[r], decoded[r]), rounds)),
        ("ID number checked + keyed hash (Python)", _median_ms(
            lambda r: [id_and_hash(rec["id_number"]) for rec in batches[r]], rounds)),
        ("other fields validated (Python)", _median_ms(
            lambda r: [parse(rec) for rec in batches[r]], rounds)),
    ]

    def lookup(r: int) -> None:
        with connection.cursor() as cursor:
            for i in range(0, batch, ingest.LOOKUP_CHUNK):
                cursor.execute(ingest._RESIDENTS_BY_HASH.replace("$1", "%s"),
                               [",".join(hashes[r][i:i + ingest.LOOKUP_CHUNK])])
                cursor.fetchall()

    parts.append((f"resident look-up, {batch // ingest.LOOKUP_CHUNK} queries of {ingest.LOOKUP_CHUNK} (database)",
                  _median_ms(lookup, rounds)))

    def copy_into(table: str):
        def run(r: int) -> None:
            with connection.cursor() as cursor, cursor.cursor.copy(
                f"COPY {table} ({ingest._RESULT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(ingest._RESULT_TYPES)
                for row in rows[r]:
                    copy.write_row(row)
        return run

    # One scratch copy of the result table (filled like it) per stage, each adding one index or
    # check to the one before; timed alternately round by round, the median kept.
    stages = [
        ("bare", "binary COPY into a bare table (incl. writing the rows)", []),
        ("pkey", "+ primary key", ["ALTER TABLE {t} ADD PRIMARY KEY (id)"]),
        ("uniq", "+ unique (lab, sample id, resident) where current",
         ["CREATE UNIQUE INDEX ON {t} (lab, sample_id, resident_id) WHERE superseded_at IS NULL"]),
        ("resi", "+ (resident, sampled_at)", ["CREATE INDEX ON {t} (resident_id, sampled_at)"]),
        ("chck", "+ check constraint (resulted after sampled)",
         ["ALTER TABLE {t} ADD CHECK (resulted_at >= sampled_at)"]),
        ("trig", "+ resident check per statement (0016; the ingest skips it since 0022)",
         ["CREATE TRIGGER {t}_check AFTER INSERT ON {t} REFERENCING NEW TABLE AS new_rows "
          "FOR EACH STATEMENT EXECUTE FUNCTION healthkit_result_resident_check()"]),
    ]
    ddl: list[str] = []
    with connection.cursor() as cursor:
        for tag, _label, adds in stages:
            table = f"bench_split_{tag}"
            ddl += adds
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TABLE {table} (LIKE healthkit_testresult INCLUDING DEFAULTS INCLUDING IDENTITY)")
            cursor.execute(f"INSERT INTO {table} SELECT * FROM healthkit_testresult")  # noqa: S608 - bench names
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
            for statement in ddl:
                cursor.execute(statement.format(t=table))
            cursor.execute(f"ANALYZE {table}")
    timings: dict[str, list[float]] = {tag: [] for tag, _label, _adds in stages}
    for rnd in range(rounds):
        order = stages[rnd % len(stages):] + stages[:rnd % len(stages)]
        for tag, _label, _adds in order:
            timings[tag].append(_median_ms(lambda r, rnd=rnd, tag=tag: copy_into(f"bench_split_{tag}")(rnd), 1))
    previous = 0.0
    for tag, label, _adds in stages:
        took = statistics.median(timings[tag])
        parts.append((f"{label} (COPY {took:.0f} ms)", took - previous))
        previous = took
    with connection.cursor() as cursor:
        for tag, _label, _adds in stages:
            cursor.execute(f"DROP TABLE bench_split_{tag}")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_split_work (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                       "resident_id bigint NOT NULL, created_at timestamptz NOT NULL)")
        cursor.execute("CREATE INDEX ON bench_split_work (resident_id)")
        cursor.execute("CREATE INDEX ON bench_split_work (created_at)")

    def work_per_resident(r: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_split_work (resident_id, created_at) SELECT unnest(%s::bigint[]), now()",
                           [sorted({row[0] for row in rows[r]})])

    parts.append(("pending evaluation, one row per resident (before 0020)", _median_ms(work_per_resident, rounds)))
    with mock_publish():
        parts.append(("pending evaluation, one row per task (0020)", _median_ms(
            lambda r: engine_work.evaluate_later([row[0] for row in rows[r]]), rounds)))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_split_work")
    print(f"    one batch of {batch:,} results, part by part (median of {rounds}; load {load_average()}):")
    for label, ms in parts:
        print(f"      {ms:7.1f} ms  {label}")


def order_check(rounds: int, batch: int, residents: int, now: dt.datetime) -> None:
    """What the order of a batch's residents costs the COPY, and whether sorting the rows by
    resident or a resident-first unique key wins it back: a binary COPY of `batch` results (each
    rolled back, the ingest's per-statement check skipped as in the ingest) with the residents in
    sequence, in no order, in no order but sorted per look-up chunk, and sorted over the whole
    batch; into the result table (unique key lab, sample id, resident) and into a scratch copy
    of it whose unique key is (resident, lab, sample id), indexes made before it is filled as
    the real table's were. Alternating, median of `rounds`."""
    import random

    from django.db import connection, transaction

    from bench.report import load_average
    from healthkit import ingest

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_order_resident_first")
        cursor.execute("CREATE TABLE bench_order_resident_first (LIKE healthkit_testresult INCLUDING DEFAULTS "
                       "INCLUDING IDENTITY INCLUDING CONSTRAINTS)")
        cursor.execute("ALTER TABLE bench_order_resident_first ADD PRIMARY KEY (id)")
        cursor.execute("CREATE UNIQUE INDEX ON bench_order_resident_first (resident_id, lab, sample_id) "
                       "WHERE superseded_at IS NULL")
        cursor.execute("CREATE INDEX ON bench_order_resident_first (resident_id, sampled_at)")
        cursor.execute("INSERT INTO bench_order_resident_first SELECT * FROM healthkit_testresult ORDER BY id")
        cursor.execute("SELECT setval(pg_get_serial_sequence('bench_order_resident_first', 'id'), max(id)) "
                       "FROM bench_order_resident_first")
        cursor.execute("ANALYZE bench_order_resident_first")

    chunk = ingest.LOOKUP_CHUNK

    def rows_for(rnd: int, order: str) -> list[tuple]:
        first = 60_000_000 + rnd * batch
        people = ([(first + k) % residents + 1 for k in range(batch)] if order == "in sequence"
                  else [p + 1 for p in random.Random(rnd).sample(range(residents), batch)])
        rows = [(people[k], f"lab-{k % 40:02d}", f"O{first + k:010d}", now, now, "negative", False, now)
                for k in range(batch)]
        if order == "no order, sorted per chunk":
            rows = [row for i in range(0, batch, chunk) for row in sorted(rows[i:i + chunk], key=lambda r: r[0])]
        elif order == "no order, whole batch sorted":
            rows.sort(key=lambda r: r[0])
        return rows

    tables = {"healthkit_testresult": "unique (lab, sample id, resident)",
              "bench_order_resident_first": "unique (resident, lab, sample id)"}
    orders = ("in sequence", "in no order", "no order, sorted per chunk", "no order, whole batch sorted")
    took: dict[tuple[str, str], list[float]] = {(t, o): [] for t in tables for o in orders}
    for rnd in range(rounds):
        combos = list(took)
        combos = combos[rnd % len(combos):] + combos[:rnd % len(combos)]
        for table, order in combos:
            rows = rows_for(rnd, order)
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('healthkit.result_residents_held', 'on', true)")
                    t0 = time.perf_counter()
                    with cursor.cursor.copy(
                        f"COPY {table} ({ingest._RESULT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
                    ) as copy:
                        copy.set_types(ingest._RESULT_TYPES)
                        for row in rows:
                            copy.write_row(row)
                    took[table, order].append((time.perf_counter() - t0) * 1000)
                    raise _Rollback
            except _Rollback:
                pass
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_order_resident_first")
    print(f"    binary COPY of {batch:,} results by the order of their residents, rolled back, median of {rounds} "
          f"(load {load_average()}):")
    for (table, order), ms in took.items():
        print(f"      {statistics.median(ms):7.1f} ms  {tables[table]}, residents {order}")


def mock_publish():
    """No task is published while splitting (nothing commits)."""
    from unittest import mock

    from healthkit import queues

    return mock.patch.object(queues, "publish_on_commit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1,
                        help="residents 1 M x scale (at least 20,000), results on record 10 M x scale")
    parser.add_argument("--residents", type=int, help="overrides --scale")
    parser.add_argument("--prefill", type=int, help="results on record before timing; overrides --scale")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (best of)")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=0, help="also time this many concurrent HTTP clients")
    parser.add_argument("--reference-check", action="store_true",
                        help="also compare the resident foreign key with the statement-level check (0016)")
    parser.add_argument("--split", action="store_true",
                        help="also print where one batch's time goes, part by part")
    parser.add_argument("--repeated-key-check", action="store_true",
                        help="also time the HTTP path with the JSON repeated-key check off, alternated")
    parser.add_argument("--one-connection", action="store_true",
                        help="also time the service with streaming off (look-ups and COPY on one connection, "
                             "as before), alternating with the others")
    parser.add_argument("--order-check", action="store_true",
                        help="also time the COPY by the order of a batch's residents, and a resident-first unique key")
    parser.add_argument("--residents-order", choices=("sequence", "random"), default="sequence",
                        help="a batch names its residents in the order they were registered (default) or in "
                             "no order, as a lab's batch does")
    parser.add_argument("--icu-locale", metavar="LOCALE",
                        help="create the database with this ICU locale (e.g. en-US) as its default collation "
                             "instead of the server's, as on a server initialised in a language's locale")
    parser.add_argument("--database-url", default=os.environ.get(
        "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hk_bench_ingest"))
    parser.add_argument("--broker", default=os.environ.get(
        "BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"))
    args = parser.parse_args()
    if args.residents is None:
        args.residents = max(20_000, int(1_000_000 * args.scale))
    if args.prefill is None:
        args.prefill = int(10_000_000 * args.scale)
    global RESIDENTS_ORDER
    RESIDENTS_ORDER = args.residents_order

    os.environ["DATABASE_URL"] = args.database_url
    os.environ["CELERY_BROKER_URL"] = args.broker
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    os.environ["DJANGO_DEBUG"] = "false"  # as in production (DEBUG keeps every query)
    os.environ["DJANGO_ALLOWED_HOSTS"] = HOST
    os.environ["API_THROTTLE_USER"] = "100000/min"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthkit.settings")
    from bench.benchdb import recreate_database
    from bench.report import emit, load_average

    recreate_database(args.database_url, icu_locale=args.icu_locale)

    import django

    django.setup()
    from healthkit.celery import app
    from healthkit.queues import QUEUES

    now = dt.datetime.now(dt.UTC)
    build(args, now)
    client = http_client()
    print(f"... load average before timing: {load_average()}", flush=True)

    meter = CpuMeter()
    best = {"raw": float("inf"), "service": float("inf"), "http": float("inf")}
    if args.one_connection:
        best["one connection"] = float("inf")
    if args.repeated_key_check:
        best["http, no repeated-key check"] = float("inf")
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in best}
    per_round: dict[str, list[float]] = {name: [] for name in best}  # seconds, round by round
    next_row = 0
    for rnd in range(args.rounds):
        records = records_for("S", next_row, args.batch, args.residents, now)
        rows = parsed_rows(records, next_row, args.residents, now)
        next_row += args.batch
        http_records = records_for("H", next_row, args.batch, args.residents, now)
        next_row += args.batch
        body = json.dumps({"batch_id": f"bench-http-{rnd}", "records": http_records}).encode()
        runs = {
            "raw": lambda rows=rows: time_raw(rows),
            "service": lambda records=records, rnd=rnd: time_service(records, f"bench-service-{rnd}"),
            "http": lambda body=body: time_http(client, body, args.batch),
        }
        if args.repeated_key_check:
            unchecked = records_for("U", next_row, args.batch, args.residents, now)
            next_row += args.batch
            unchecked_body = json.dumps({"batch_id": f"bench-unchecked-{rnd}", "records": unchecked}).encode()
            runs["http, no repeated-key check"] = lambda body=unchecked_body: time_http_unchecked(
                client, body, args.batch)
        if args.one_connection:
            single = records_for("O", next_row, args.batch, args.residents, now)
            next_row += args.batch
            runs["one connection"] = lambda single=single, rnd=rnd: time_service(
                single, f"bench-single-{rnd}", stream=False)
        order = list(runs)[rnd % len(runs):] + list(runs)[:rnd % len(runs)]
        times = {}
        for name in order:
            times[name], client_cpu, db_cpu = meter.run(runs[name])
            best[name] = min(best[name], times[name])
            per_round[name].append(times[name])
            cpu[name].append((client_cpu, db_cpu))
        print(f"    round {rnd + 1}: " + ", ".join(f"{name} {args.batch / s:,.0f} rows/s" for name, s in times.items())
              + f"  [load {load_average()}]", flush=True)

    rate = {name: args.batch / seconds for name, seconds in best.items()}
    # Under load one lucky round of the short raw COPY moves the best-of ratio a lot: the median
    # of the rounds' own ratios (each round times the three paths back to back) is printed too.
    for name in [name for name in best if name != "raw"]:
        ratios = [raw / took for raw, took in zip(per_round["raw"], per_round[name], strict=True)]
        print(f"    {name} / raw COPY, median of the {len(ratios)} rounds' ratios: {statistics.median(ratios):.2f}"
              f" (rounds: {', '.join(f'{r:.2f}' for r in ratios)})")
    # median CPU ms per batch (Python process / database backends): what each path costs on a
    # core, the part of the figures that load moves least (nan where a backend ended in the call)
    cpu_ms = {name: (1000 * statistics.median(c for c, _d in v),
                     1000 * statistics.median([d for _c, d in v if d == d] or [float("nan")]))
              for name, v in cpu.items()}
    for name, (client_ms, db_ms) in cpu_ms.items():
        print(f"    CPU per batch, {name}: Python {client_ms:.0f} ms, database {db_ms:.0f} ms (median)")
    scale = (f"{args.batch:,} results a batch, {args.residents:,} residents, {args.prefill:,}+ results on record, "
             f"best of {args.rounds} alternating rounds, single stream"
             + (", residents in no order" if RESIDENTS_ORDER == "random" else ""))
    emit("result ingest, service (healthkit.ingest)", project=rate["service"], reference=rate["raw"],
         unit="rows/s", ratio=rate["service"] / rate["raw"], aim=">= 0.5", scale=scale,
         cpu_ms={"project": cpu_ms["service"], "reference": cpu_ms["raw"]})
    emit("result ingest, HTTP (POST /api/v1/ingest/test-results/)", project=rate["http"], reference=rate["raw"],
         unit="rows/s", ratio=rate["http"] / rate["raw"], aim=">= 0.4", scale=scale,
         cpu_ms={"project": cpu_ms["http"], "reference": cpu_ms["raw"]})

    if args.clients > 1:
        per_client = 3
        bodies = []
        for c in range(args.clients):
            mine = []
            for k in range(per_client):
                recs = records_for(f"C{c}", next_row, args.batch, args.residents, now)
                next_row += args.batch
                mine.append(json.dumps({"batch_id": f"bench-c{c}-{k}", "records": recs}).encode())
            bodies.append(mine)
        concurrent = concurrent_http(bodies, args.batch)
        emit(f"result ingest, HTTP, {args.clients} concurrent clients (processes) vs raw COPY on one connection",
             project=concurrent, reference=rate["raw"], unit="rows/s", ratio=concurrent / rate["raw"], aim=">= 0.4",
             scale=f"{args.clients} x {per_client} batches of {args.batch:,}, {args.residents:,} residents; "
                   "NOT single-stream: uses the second core")

    if args.reference_check:
        reference_check_comparison(args.rounds, args.batch, args.residents, now)

    if args.split:
        split(args.rounds, args.batch, args.residents, now)

    if args.order_check:
        order_check(args.rounds, args.batch, args.residents, now)

    try:
        with app.connection_for_write() as conn:
            # The evaluation tasks are routed to `engine`, which control.purge() does not know of
            # (it purges the app's declared queues only): every queue of healthkit.queues by name.
            purged = 0
            for name in QUEUES:
                try:
                    purged += conn.default_channel.queue_purge(name) or 0
                except Exception:  # noqa: BLE001, S112 - a queue never declared on this broker
                    continue
        print(f"... purged {purged:,} evaluation tasks (no worker was running)")
    except Exception as exc:  # noqa: BLE001 - the figures are printed; a broker hiccup only leaves tasks
        print(f"... could not purge the evaluation tasks: {type(exc).__name__}")


if __name__ == "__main__":
    main()
