"""Engine work: one row per evaluation task (its residents as an array) instead of one per
resident. A batch of 10,000 results wrote 10,000 rows with three index entries each (about a
quarter of the batch's database time); it now writes 10 rows. Rows waiting at the migration
become one-resident rows, which the every-minute sweep takes as before."""

import django.contrib.postgres.fields
from django.db import migrations, models

# Backwards (an empty or near-empty table: rows live for seconds): one row per resident again.
SPLIT = """
INSERT INTO healthkit_enginework (resident_id, resident_ids, created_at)
SELECT unnest(resident_ids), '{}', created_at FROM healthkit_enginework WHERE resident_id IS NULL;
DELETE FROM healthkit_enginework WHERE resident_id IS NULL;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('healthkit', '0019_outbox_record_unique_per_popup_change'),
    ]

    operations = [
        migrations.AddField(
            model_name='enginework',
            name='resident_ids',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), null=True, size=None, verbose_name='residents'),
        ),
        migrations.AlterField(
            model_name='enginework',
            name='resident_id',
            field=models.BigIntegerField(null=True, verbose_name='resident id'),
        ),
        migrations.RunSQL(
            "UPDATE healthkit_enginework SET resident_ids = ARRAY[resident_id]",
            SPLIT,
        ),
        migrations.RemoveIndex(
            model_name='enginework',
            name='enginework_resident_idx',
        ),
        migrations.RemoveIndex(
            model_name='enginework',
            name='enginework_created_idx',
        ),
        migrations.RemoveField(
            model_name='enginework',
            name='resident_id',
        ),
        migrations.AlterField(
            model_name='enginework',
            name='resident_ids',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), size=None, verbose_name='residents'),
        ),
        migrations.AddIndex(
            model_name='enginework',
            index=models.Index(models.F('resident_ids__0'), name='enginework_first_resident_idx'),
        ),
    ]
