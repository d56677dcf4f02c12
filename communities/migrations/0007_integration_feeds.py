"""Integration clients are scoped to their feeds (and a lab's token to its lab). Clients that
existed before keep every feed, so nothing stops at deploy; an administrator then narrows each one
in the admin (a lab to test results and its lab, a ticket system to Open311, the SMS gateway to
receipts)."""

import django.contrib.postgres.fields
from django.db import migrations, models


ALL_FEEDS = ["test_results", "arrivals", "stays", "local_cases", "quarantine_orders", "medical_events",
             "popup_assignments", "venue_scans", "sms_receipts", "open311"]


def existing_clients_keep_every_feed(apps, schema_editor):
    User = apps.get_model("communities", "User")
    User.objects.filter(role="integration").update(feeds=ALL_FEEDS)


class Migration(migrations.Migration):

    dependencies = [
        ('communities', '0006_resident_id_hash_hash'),
    ]

    operations = [
        migrations.AddField(
            model_name='user',
            name='feeds',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.CharField(choices=[('test_results', 'Nucleic-acid test results'), ('arrivals', 'Arrivals into the city'), ('stays', 'Stays outside the city'), ('local_cases', 'Local cases per county'), ('quarantine_orders', 'Entry quarantine orders'), ('medical_events', 'Drug purchases and clinic visits'), ('popup_assignments', 'Upstream popup assignments'), ('venue_scans', 'Venue scans'), ('sms_receipts', 'SMS delivery receipts'), ('open311', 'Open311 appeals')], max_length=20), blank=True, default=list, help_text="Integration clients only: the feeds this client's token may send. None by default.", size=None, verbose_name='feeds'),
        ),
        migrations.AddField(
            model_name='user',
            name='lab',
            field=models.CharField(blank=True, help_text='Integration clients sending test results: the lab every result must name. Leave empty only for a platform relaying many labs (the national platform).', max_length=64, verbose_name='lab'),
        ),
        migrations.RunPython(existing_clients_keep_every_feed, migrations.RunPython.noop),
    ]
