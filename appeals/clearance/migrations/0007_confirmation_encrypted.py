"""The resident's confirmation (address, symptoms, contact with a case) is encrypted at rest:
the clear JSON column is replaced by a Fernet-encrypted text column of the same name, filled from
the old one in batches (encryption happens in Python, so not one UPDATE)."""

import communities.fields
from django.db import migrations


def encrypt_existing(apps, schema_editor):
    ClearanceTask = apps.get_model("clearance", "ClearanceTask")
    pending = ClearanceTask.objects.exclude(confirmation_plain={}).order_by("pk")
    last = 0
    while True:
        batch = list(pending.filter(pk__gt=last).only("pk", "confirmation_plain")[:1000])
        if not batch:
            break
        for task in batch:
            task.confirmation = task.confirmation_plain
        ClearanceTask.objects.bulk_update(batch, ["confirmation"])
        last = batch[-1].pk


def decrypt_back(apps, schema_editor):
    ClearanceTask = apps.get_model("clearance", "ClearanceTask")
    for task in ClearanceTask.objects.exclude(confirmation="").iterator(chunk_size=1000):
        ClearanceTask.objects.filter(pk=task.pk).update(confirmation_plain=task.confirmation)


class Migration(migrations.Migration):
    dependencies = [("clearance", "0006_verbose_names")]

    operations = [
        migrations.RenameField("clearancetask", "confirmation", "confirmation_plain"),
        migrations.AddField(
            model_name="clearancetask",
            name="confirmation",
            field=communities.fields.EncryptedJSONField(blank=True, default=dict, editable=False,
                                                        verbose_name="resident's confirmation"),
        ),
        migrations.RunPython(encrypt_existing, decrypt_back),
        migrations.RemoveField("clearancetask", "confirmation_plain"),
    ]
