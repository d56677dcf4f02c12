"""Open queues ordered by SLA seek through a partial (sla_due_at, id) index; built concurrently
so a live appeals table keeps taking writes while it is made."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("appeals", "0008_appeal_claimed_identity"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="appeal",
            index=models.Index(
                condition=models.Q(("status__in", ["new", "in_progress", "waiting_resident", "routed"])),
                fields=["sla_due_at", "id"], name="appeal_seek_sla_open_idx"),
        ),
    ]
