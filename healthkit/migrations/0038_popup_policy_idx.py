"""A policy's delete page counts the popups that protect it (healthkit.admin_site), which read
every popup without an index at a million rows. Built concurrently: popups keep being raised."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("healthkit", "0037_test_requirement_withdrawn"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="popupcase",
            index=models.Index(fields=["policy"], name="popup_policy_idx", condition=Q(policy__isnull=False)),
        ),
    ]
