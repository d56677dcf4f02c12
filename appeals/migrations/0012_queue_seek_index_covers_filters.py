"""The default queue's seek index carries the columns the queue's filters test (a walk past rows a
filter does not want reads the index, not the table), built beside the old one and renamed to its
name so no moment is without it; and statistics on the appeal's communities with the popup type
it names, which are correlated (a district's communities see popups of a few causes): without
them the planner counts a combination that matches nothing as thousands of rows and reads the
queue hoping to meet them early. Built concurrently, so a live appeals table keeps taking writes."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

OPEN = ["new", "in_progress", "waiting_resident", "routed"]
COVERED = ["status", "category", "channel", "popup_type_claimed", "community", "routed_community", "assigned_to",
           "repeat_count", "escalated_at", "sla_due_at", "currently_outside_city", "outside_since"]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("appeals", "0011_queue_filter_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="appeal",
            index=models.Index(fields=["priority", "created_at", "id"], name="appeal_seek_priority_new",
                               include=COVERED, condition=models.Q(status__in=OPEN)),
        ),
        RemoveIndexConcurrently(model_name="appeal", name="appeal_seek_priority_idx"),
        migrations.RenameIndex(model_name="appeal", new_name="appeal_seek_priority_idx",
                               old_name="appeal_seek_priority_new"),
        migrations.RunSQL(
            "CREATE STATISTICS IF NOT EXISTS appeal_place_type_stats (mcv) "
            "ON community_id, routed_community_id, popup_type_claimed FROM appeals_appeal; "
            # Enough entries to list every community and popup type pair seen.
            "ALTER STATISTICS appeal_place_type_stats SET STATISTICS 1000;",
            "DROP STATISTICS IF EXISTS appeal_place_type_stats;",
        ),
    ]
