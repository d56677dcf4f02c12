"""The embedded broker works from a bare checkout: kombu's filesystem transport does not create
its folders, and without them every publish failed (logged, the work left to the periodic
sweep), in whichever process published first: a web request, a worker, `seed_demo`, a
benchmark. The Celery app makes them when it first reads its configuration (healthkit/celery.py).

Each case runs in a fresh process: the test process's Celery app is configured already."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PUBLISH = """
import django
django.setup()
from healthkit import queues, tasks
print("sent", queues.publish(tasks.engine_evaluate_work, [[1]]))
"""


def _run(tmp_path: Path, code: str, broker: str = "filesystem://") -> subprocess.CompletedProcess:
    # published, not run in place (the suite's runner sets CELERY_TASK_ALWAYS_EAGER for the tests)
    env = {**os.environ, "HEALTHKIT_DATA_DIR": str(tmp_path / "data"), "CELERY_BROKER_URL": broker,
           "CELERY_TASK_ALWAYS_EAGER": "false",
           "DJANGO_SETTINGS_MODULE": "healthkit.settings", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,  # noqa: S603
                          timeout=120)


def test_a_first_publish_on_a_bare_checkout_is_queued(tmp_path):
    done = _run(tmp_path, PUBLISH)
    assert done.returncode == 0, done.stderr
    assert "sent 1" in done.stdout
    assert "publish of" not in done.stderr  # no failure logged
    broker = tmp_path / "data" / "broker"
    assert sorted(p.name for p in broker.iterdir()) == ["control", "processed", "queue"]
    assert len(list((broker / "queue").iterdir())) == 1  # the message itself


def test_another_broker_makes_no_folders(tmp_path):
    done = _run(tmp_path, "import django; django.setup(); from healthkit.celery import app; print(app.conf.broker_url)",
                broker="memory://")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "data" / "broker").exists()
