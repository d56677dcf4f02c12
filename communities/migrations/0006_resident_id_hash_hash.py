"""The ingest looks residents up by keyed hash, 10,000 a batch, equality only: a hash index
probes cheaper than the unique B-tree. Built concurrently so a live resident table keeps taking
registrations while it is made."""

from django.contrib.postgres.indexes import HashIndex
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("communities", "0005_verbose_names"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="resident",
            index=HashIndex(fields=["id_hash"], name="resident_id_hash_hash"),
        ),
    ]
