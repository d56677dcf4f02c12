"""REST list serialisation of appeals: the project's list rows (what /api/v1/appeals/ builds for a
page: one .values() query, times formatted by PostgreSQL, shaped by plain functions) against the
reference, plain dicts from .values() of the model columns behind the schema's fields
(REFERENCE_COLUMNS, pinned here so that the reference does not move with the project), for 200
and 10,000 rows; median of N runs and the ratio
(reference time / project time: 1.0 means as fast as the bare dicts; aim >= 0.6). The previous
path (DRF AppealSummarySerializer over select_related models) is printed for comparison.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/hk_bench_lists .venv/bin/python bench/api_lists.py

Migrates the database, uses the appeals in it, and fills `--appeals` (default 20,000) valid fake
ones with `appeals_queue_bench`'s SQL when it holds fewer than 10,000 (point DATABASE_URL at a
throw-away database). Each figure is also printed through `bench/report.py` (`RESULT` lines for
`bench/run_all.py`).
"""

import argparse
import contextlib
import io
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hk_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthkit.settings")
os.environ["DJANGO_DEBUG"] = "false"  # as in production: DEBUG keeps every query and wraps every cursor
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["CELERY_BROKER_URL"] = "memory://"


# The columns AppealSummarySerializer's fields read (the resident's for the masked person).
REFERENCE_COLUMNS = ("id", "reference", "status", "category", "priority", "channel", "claimed_masked",
                     "resident_id", "resident__name", "resident__id_masked", "resident__id_hash",
                     "popup_type_claimed", "community__name", "routed_community__name", "assigned_to__username",
                     "repeat_count", "sla_due_at", "sla_breached_at", "created_at", "closed_at", "outcome")


def timed(fns: list, runs: int) -> list[float]:
    """Median ms of each function, run interleaved (one of each per round) so that load from
    other work on the machine falls on all of them alike."""
    samples: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn()
    for _ in range(runs):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            fn()
            samples[i].append((time.perf_counter() - started) * 1000)
    return [statistics.median(s) for s in samples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appeals", type=int, default=20_000, help="appeals filled when fewer than 10,000")
    args = parser.parse_args()
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import translation

    from appeals.api import AppealSummarySerializer, appeal_summaries, appeal_summary_values
    from appeals.models import Appeal
    from bench.report import emit

    call_command("migrate", verbosity=0)
    if Appeal.objects.count() < 10_000:
        # Its fill only: no queue timed (a key matching no queue), its output kept out of ours, so
        # bench/run_all.py reads only this script's figures.
        with contextlib.redirect_stdout(io.StringIO()):
            call_command("appeals_queue_bench", appeals=max(args.appeals, 10_000),
                         residents=max(5_000, args.appeals // 4), i_know=True, repeat=1, only="fill-only",
                         stdout=io.StringIO())
    translation.activate("zh-hans")
    qs = Appeal.objects.order_by("-created_at", "-id")
    joined = qs.select_related("resident", "community", "routed_community", "assigned_to")
    total = Appeal.objects.count()
    print(f"appeals in table: {total}; median of runs; ratio = reference / project")
    print(f"{'rows':>6s} {'project ms':>10s} {'reference ms':>12s} {'ratio':>6s} {'old DRF path ms':>15s} {'ratio':>6s}")
    for rows, runs in ((200, 60), (10_000, 9)):
        project, reference, old = timed([
            lambda n=rows: appeal_summaries(list(appeal_summary_values(qs)[:n])),
            lambda n=rows: list(qs.values(*REFERENCE_COLUMNS)[:n]),
            lambda n=rows: AppealSummarySerializer(joined[:n], many=True).data,
        ], runs)
        print(f"{rows:6d} {project:10.1f} {reference:12.1f} {reference / project:6.2f} {old:15.1f} {reference / old:6.2f}")
        emit(f"REST list serialisation, appeals, {rows:,} rows", project=project, reference=reference, unit="ms",
             ratio=reference / project, aim=">= 0.6", scale=f"{total:,} appeals; median of {runs} interleaved runs",
             ratio_is="reference / project (speed as a fraction of plain dicts)",
             previous_drf_ms=round(old, 2), previous_drf_ratio=round(reference / old, 3))


if __name__ == "__main__":
    main()
