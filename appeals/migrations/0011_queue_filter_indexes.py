"""Indexes for the queue's filters on columns no seek index leads with (category, channel, popup
type, escalated, appealed again, stranded): a filtered queue page that matches few or no rows
finds them here instead of reading the whole queue. Built concurrently so a live appeals table
keeps taking writes while they are made."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("appeals", "0010_appeal_seek_priority_all_idx"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="appeal",
            index=models.Index(fields=["category"], name="appeal_category_idx"),
        ),
        AddIndexConcurrently(
            model_name="appeal",
            index=models.Index(fields=["channel"], name="appeal_channel_idx"),
        ),
        AddIndexConcurrently(
            model_name="appeal",
            index=models.Index(fields=["popup_type_claimed"], name="appeal_popup_type_idx"),
        ),
        AddIndexConcurrently(
            model_name="appeal",
            index=models.Index(fields=["escalated_at"], name="appeal_escalated_idx",
                               condition=models.Q(escalated_at__isnull=False)),
        ),
        AddIndexConcurrently(
            model_name="appeal",
            index=models.Index(fields=["repeat_count"], name="appeal_repeated_idx", condition=models.Q(repeat_count__gt=0)),
        ),
        AddIndexConcurrently(
            model_name="appeal",
            index=models.Index(fields=["outside_since"], name="appeal_outside_idx",
                               condition=models.Q(currently_outside_city=True)),
        ),
    ]
