#!/usr/bin/env python
"""Every hot path's figure in one command: project / reference / ratio against the aim.

Runs each benchmark script one after the other (never two at once: they share the machine), each
against its own dedicated database, gathers the `RESULT {json}` lines they print through
`bench/report.py`'s `emit`, and prints one table:

    path | project | reference | ratio | aim | met?

followed by where each figure comes from (script, scale, load average when it was taken) and
the load average at the start and the end of the whole run. A script that is missing, fails or
prints no `RESULT` line still gets its row ("failed: <reason>" / "no RESULT line") and the
command exits 1.

    .venv/bin/python bench/run_all.py                    # default scale 0.1 (100 k open popups, ...)
    .venv/bin/python bench/run_all.py --scale 1          # the issue's scale (1 M open popups, 10 M scans)
    .venv/bin/python bench/run_all.py --only lists,uploads
    .venv/bin/python bench/run_all.py --extras           # also the dashboard and the SMS code latency
    .venv/bin/python bench/run_all.py --sizes            # then bytes per row of each table, per database

At scale s: the engine sweep over 1 M * s open popups (and 1 M * s results), the operator
queue over 1 M * s appeals with the deep cursor at min(50,000, a quarter of them), the REST
list over max(20,000, 200,000 * s) appeals, the exposure job in 10 M * s scans (50 k visitors
in the window at any scale), the ingest script with `--scale s` (1 M * s residents, 10 M * s
results on record), the uploads at their own fixed sizes. The engine and ingest scripts publish
their evaluation tasks to the embedded `filesystem://` broker (no worker; nothing shared).
Scale 0.1 took 7 minutes with `--extras` on a quiet 2-core machine (22 minutes at load 4-10);
scale 1 takes hours.

The databases are named `<--db-prefix><name>` (default `hk_bench_run_`: hk_bench_run_engine,
hk_bench_run_queue, ...); each is DROPPED and re-created (by this script or by the benchmark
itself): never point the prefix at databases holding real data. `--drop` drops them at the end.
Each script's output goes to a log file in `--logs` (printed at the start).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import load_average  # noqa: E402 - after the path setup above

SERVER = "postgres://postgres@127.0.0.1:5432"


@dataclasses.dataclass
class Bench:
    """One script and the rows of the issue's table it answers."""

    name: str
    rows: tuple[str, ...]
    script: str  # path under the repository, or "manage.py <command>"
    fresh_database: bool = False  # this runner drops, creates and migrates it first
    extra: bool = False  # only with --extras (not a row of the table)
    timeout: float = 3600

    def command(self, python: str) -> list[str]:
        if self.script.startswith("manage.py "):
            return [python, str(ROOT / "manage.py"), *self.script.split()[1:]]
        return [python, str(ROOT / self.script)]


BENCHES = (
    Bench("engine", ("full engine sweep, nothing to change", "full engine sweep, lifts to make"),
          "bench/engine.py"),
    Bench("queue", ("operator queue, default queue, deep cursor: page p95 and queries",),
          "manage.py appeals_queue_bench", fresh_database=True),
    Bench("lists", ("REST list serialisation, appeals, 200 rows", "REST list serialisation, appeals, 10,000 rows"),
          "bench/api_lists.py", fresh_database=True),
    Bench("exposure", ("exposure job, 50 k visitors",), "bench/venues.py"),
    Bench("ingest", ("result ingest through the service", "result ingest through the HTTP API"),
          "bench/ingest.py"),
    Bench("uploads", ("evidence upload, 1-3 MB screenshots", "evidence upload, p95 with 2 concurrent"),
          "bench/uploads.py"),
    Bench("dashboard", ("supervisor dashboard page",), "bench/dashboard.py", extra=True),
    Bench("sms", ("one-time code SMS behind a burst of links",), "bench/sms_latency.py", extra=True),
)


def arguments(bench: Bench, scale: float, options: set[str]) -> list[str]:
    """The script's arguments for `scale` (only options its --help lists are passed)."""
    wanted: dict[str, object] = {}
    if bench.name == "engine":
        wanted = {"--residents": int(1_000_000 * scale), "--results": int(1_000_000 * scale),
                  "--sweep-changes": max(1_000, int(10_000 * scale)), "--skip-latency": True,
                  "--broker": "filesystem://"}
    elif bench.name == "queue":
        appeals = int(1_000_000 * scale)
        wanted = {"--appeals": appeals, "--residents": max(5_000, appeals // 4),
                  "--depth": min(50_000, appeals // 4), "--i-know": True}
    elif bench.name == "lists":
        wanted = {"--appeals": max(20_000, int(200_000 * scale))}
    elif bench.name == "ingest":  # evaluation tasks to the embedded broker, never a shared one
        wanted = {"--scale": scale, "--broker": "filesystem://"}
    elif bench.name in ("exposure", "dashboard"):
        wanted = {"--scale": scale}
    elif bench.name == "sms":
        wanted = {"--links": max(200, int(2_000 * scale)), "--codes": 20 if scale < 1 else 60}
    out: list[str] = []
    for option, value in wanted.items():
        if option not in options:
            continue
        out += [option] if value is True else [option, str(value)]
    return out


def help_options(command: list[str], env: dict[str, str]) -> set[str]:
    """The long options a script accepts, read from its --help (none if it takes no arguments)."""
    if command[-1].endswith(".py") and "argparse" not in Path(command[-1]).read_text(errors="replace"):
        return set()  # without argparse, --help would run the benchmark itself
    try:
        done = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return {word.strip("[],=").split("=")[0] for word in done.stdout.split() if word.startswith("--")}


def recreate_and_migrate(url: str, python: str, env: dict[str, str]) -> None:
    from bench.benchdb import recreate_database

    recreate_database(url)
    subprocess.run([python, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT,
                   check=True, capture_output=True, text=True)


@dataclasses.dataclass
class Outcome:
    bench: Bench
    records: list[dict]
    failure: str = ""  # why it has no figures
    seconds: float = 0.0
    command: str = ""


def run(bench: Bench, args: argparse.Namespace, logs: Path) -> Outcome:
    python = sys.executable
    command = bench.command(python)
    target = command[-1] if not bench.script.startswith("manage.py") else str(ROOT / "manage.py")
    if not Path(target).exists():
        print(f"\n[{bench.name}] failed: {bench.script} does not exist", flush=True)
        return Outcome(bench, [], failure=f"failed: {bench.script} does not exist")
    url = f"{SERVER}/{args.db_prefix}{bench.name}"
    env = {**os.environ, "DATABASE_URL": url, "BENCH_DATABASE_URL": url, "PYTHONUNBUFFERED": "1",
           "CELERY_TASK_ALWAYS_EAGER": "false", "DJANGO_SETTINGS_MODULE": "healthkit.settings"}
    env.pop("CELERY_BROKER_URL", None)
    command += arguments(bench, args.scale, help_options(command, env))
    shown = f"DATABASE_URL={url} " + " ".join(os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c
                                              for c in command)
    print(f"\n[{bench.name}] {shown}\n[{bench.name}] load {load_average()}", flush=True)
    log = logs / f"{bench.name}.log"
    started = time.perf_counter()
    try:
        if bench.fresh_database:
            recreate_and_migrate(url, python, env)
        with log.open("w") as out:
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                  timeout=bench.timeout * max(1.0, args.scale * 10))
        code = done.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    except (OSError, subprocess.CalledProcessError) as exc:
        code = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    seconds = time.perf_counter() - started
    text = log.read_text(errors="replace") if log.exists() else ""
    records = []
    for line in text.splitlines():
        if line.startswith("RESULT "):
            try:
                record = json.loads(line[len("RESULT "):])
            except ValueError:
                continue
            if record not in records:  # a script may print a figure again in its summary
                records.append(record)
    failure = ""
    if code != 0:
        last = [ln for ln in text.splitlines() if ln.strip()][-1:] or [""]
        failure = f"failed: exit {code}" + (f" ({last[0].strip()[:150]})" if last[0] else "")
    elif not records:
        failure = "no RESULT line"
    print(f"[{bench.name}] {failure or 'ok'}, {len(records)} figure(s), {seconds:.0f} s, "
          f"load {load_average()}; log {log}", flush=True)
    return Outcome(bench, records, failure, seconds, shown)


def number(value: object) -> str:
    return f"{value:,.4g}" if isinstance(value, int | float) else str(value)


def table(outcomes: list[Outcome]) -> list[str]:
    lines = ["| path | project | reference | ratio | aim | met? |", "|---|---|---|---|---|---|"]
    for o in outcomes:
        if o.records:
            for r in o.records:
                unit = r.get("unit", "")
                lines.append(f"| {r['path']} | {number(r['project'])} {unit} | {number(r['reference'])} {unit} | "
                             f"{r['ratio']:.2f} | {r['aim']} | {'yes' if r['met'] else 'NO'} |")
            if o.failure:  # figures printed, then the script failed
                lines.append(f"| {o.bench.name}: {o.failure} | | | | | |")
        else:
            for row in o.bench.rows:
                lines.append(f"| {row} | {o.failure} | | | | |")
    return lines


def table_sizes(url: str) -> list[tuple[str, int, int]]:
    """(table, rows, bytes with indexes and TOAST) for every non-empty table of a database."""
    import psycopg

    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition").fetchall()]
        for name in tables:
            rows = conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            if rows:
                size = conn.execute(
                    "SELECT coalesce(sum(pg_total_relation_size(relid)), pg_total_relation_size(%s::regclass)) "
                    "FROM pg_partition_tree(%s::regclass) WHERE isleaf", (name, name)).fetchone()[0]
                out.append((name, rows, int(size)))
    return sorted(out, key=lambda t: -t[2])


def drop(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1, help="1 = the issue's scale (default 0.1)")
    parser.add_argument("--only", default="", help="comma-separated names: " + ",".join(b.name for b in BENCHES))
    parser.add_argument("--skip", default="", help="comma-separated names to leave out")
    parser.add_argument("--extras", action="store_true", help="also the dashboard and SMS latency benchmarks")
    parser.add_argument("--db-prefix", default="hk_bench_run_")
    parser.add_argument("--logs", default="", help="folder for each script's output (default: a new temp folder)")
    parser.add_argument("--json", default="", help="also write every figure gathered to this file")
    parser.add_argument("--sizes", action="store_true", help="print rows and bytes per row of each bench database")
    parser.add_argument("--drop", action="store_true", help="drop the bench databases at the end")
    args = parser.parse_args()
    if not args.db_prefix.startswith("hk_bench"):
        parser.error("--db-prefix must start with hk_bench (the databases are dropped)")

    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    unknown = (only | skip) - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"unknown name(s): {', '.join(sorted(unknown))}")
    chosen = [b for b in BENCHES if (b.name in only if only else (not b.extra or args.extras)) and b.name not in skip]
    logs = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="hk_run_all-"))
    logs.mkdir(parents=True, exist_ok=True)
    start_load = load_average()
    print(f"scale {args.scale:g}; {len(chosen)} benchmark(s), one at a time; logs in {logs}")
    print(f"load average at start: {start_load}", flush=True)

    outcomes = [run(b, args, logs) for b in chosen]

    end_load = load_average()
    print(f"\nscale {args.scale:g}; load average at start {start_load}, at end {end_load}\n")
    print("\n".join(table(outcomes)))
    print("\nwhere each figure comes from:")
    for o in outcomes:
        for r in o.records:
            extra = {k: v for k, v in r.items() if k not in {"path", "project", "reference", "unit", "ratio", "aim",
                                                          "met", "scale", "load", "script"}}
            print(f"- {r['path']}: {r.get('script', o.bench.script)}, {r.get('scale') or 'scale n/a'}, "
                  f"load {r.get('load', 'n/a')}" + (f", {json.dumps(extra, ensure_ascii=False)}" if extra else ""))
        if o.command:
            print(f"  ({o.bench.name}: {o.command}; {o.seconds:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "scale": args.scale, "load_start": start_load, "load_end": end_load,
            "figures": [r for o in outcomes for r in o.records],
            "failures": {o.bench.name: o.failure for o in outcomes if o.failure}}, ensure_ascii=False, indent=1))

    if args.sizes:
        print("\nrows and bytes per row (pg_total_relation_size: heap + indexes + TOAST; partitions summed):")
        for o in outcomes:
            url = f"{SERVER}/{args.db_prefix}{o.bench.name}"
            try:
                sizes = table_sizes(url)
            except Exception as exc:  # noqa: BLE001 - a database the script never made
                print(f"  {o.bench.name}: no sizes ({type(exc).__name__}: {str(exc).strip()[:80]})")
                continue
            print(f"  {url.rsplit('/', 1)[1]}:")
            for name, rows, size in sizes:
                if rows >= 1_000:
                    print(f"    {name:40s} {rows:>12,} rows {size / 1e6:>10,.1f} MB {size / rows:>8,.0f} B/row")
    if args.drop:
        for o in outcomes:
            drop(f"{SERVER}/{args.db_prefix}{o.bench.name}")
    return 1 if any(o.failure for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
