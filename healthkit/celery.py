"""The Celery app. Broker and results come from settings (the environment)."""

import importlib
import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthkit.settings")

# Every task retries a lost database connection with backoff (healthkit/taskbase.py).
app = Celery("healthkit", task_cls="healthkit.taskbase:HealthkitTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _filesystem_broker_folders(sender: Celery, **kwargs: object) -> None:
    """kombu's filesystem transport (the embedded broker) does not create its folders: without
    them every publish fails, and the outbox and the periodic sweep pick the work up late. Made
    when the app first reads its configuration, in whichever process (web, worker, command, bench)
    publishes or consumes first."""
    if not str(sender.conf.broker_url or "").startswith("filesystem"):
        return
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


@app.on_after_finalize.connect
def _merge_app_schedules(sender: Celery, **kwargs: object) -> None:
    """Collect each installed app's `schedule.BEAT_SCHEDULE` so periodic jobs live beside their tasks."""
    from django.apps import apps

    schedule = dict(sender.conf.beat_schedule or {})
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.schedule")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.schedule":
                raise
            continue
        schedule.update(getattr(module, "BEAT_SCHEDULE", {}))
    sender.conf.beat_schedule = schedule
