import django.contrib.postgres.indexes
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('communities', '0005_verbose_names'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='resident',
            index=django.contrib.postgres.indexes.HashIndex(fields=['id_hash'], name='resident_id_hash_hash'),
        ),
    ]
