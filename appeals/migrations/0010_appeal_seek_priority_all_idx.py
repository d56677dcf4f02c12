"""The "everything" and "closed" queues in priority order seek through a full (priority,
created_at, id) index instead of sorting the whole table; built concurrently so a live appeals
table keeps taking writes while it is made."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("appeals", "0009_appeal_seek_sla_open_idx"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="appeal",
            index=models.Index(fields=["priority", "created_at", "id"], name="appeal_seek_priority_all_idx"),
        ),
    ]
