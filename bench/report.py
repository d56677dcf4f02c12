"""One line format for every benchmark figure, so `bench/run_all.py` can gather them.

Each figure is a project measurement next to a reference timed in the same run, and the ratio
the issue's aim is written against. The aim's direction differs per row (a sweep's time must be
at most 1.5x its reference, an ingest's throughput at least 0.5x raw COPY, a list's speed at
least 0.6x plain dicts), so the caller states the ratio it computed and the aim as text:

    emit("full sweep, nothing to change", project=3.1, reference=2.2, unit="s",
         ratio=3.1 / 2.2, aim="<= 1.5", scale="1 M open popups")

prints a readable line and a machine line `RESULT {...}` (JSON).
"""

from __future__ import annotations

import json
import os
import sys


def load_average() -> str:
    """The 1/5/15-minute load, printed with every figure: under load only ratios compare."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:  # not Linux
        return "n/a"


def aim_met(ratio: float, aim: str) -> bool:
    """`aim` is "<= X" or ">= X"."""
    op, _, value = aim.strip().partition(" ")
    bound = float(value)
    if op == "<=":
        return ratio <= bound
    if op == ">=":
        return ratio >= bound
    raise ValueError(f"aim must be '<= X' or '>= X', not {aim!r}")


def emit(path: str, *, project: float, reference: float, unit: str, ratio: float, aim: str,
         scale: str = "", **extra: object) -> dict:
    """Print one figure (human line + `RESULT` JSON line) and return it."""
    record = {
        "path": path, "project": round(project, 4), "reference": round(reference, 4), "unit": unit,
        "ratio": round(ratio, 3), "aim": aim, "met": aim_met(ratio, aim), "scale": scale,
        "load": load_average(), "script": os.path.basename(sys.argv[0]), **extra,
    }
    print(f"{path}: project {project:,.4g} {unit} / reference {reference:,.4g} {unit} = "
          f"ratio {ratio:.2f} (aim {aim}: {'met' if record['met'] else 'NOT met'}) "
          f"[{scale}; load {record['load']}]", flush=True)
    print("RESULT " + json.dumps(record, ensure_ascii=False, default=str), flush=True)
    return record
