# A full sweep raises in committed chunks: each chunk says whether raises are left for the next.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('healthkit', '0020_engine_work_per_task'),
    ]

    operations = [
        migrations.AddField(
            model_name='enginesweep',
            name='more',
            field=models.BooleanField(db_default=False, default=False, verbose_name='raises left'),
        ),
    ]
