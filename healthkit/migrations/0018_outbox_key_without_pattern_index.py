# The outbox record key unique by a constraint, without the unused varchar_pattern_ops index.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('communities', '0005_verbose_names'),
        ('healthkit', '0017_drop_redundant_open_batch_index'),
    ]

    operations = [
        migrations.AlterField(
            model_name='outboxrecord',
            name='idempotency_key',
            field=models.CharField(max_length=80, verbose_name='idempotency key'),
        ),
        migrations.AddConstraint(
            model_name='outboxrecord',
            constraint=models.UniqueConstraint(fields=('idempotency_key',), name='outbox_record_idempotency_key_uniq'),
        ),
    ]
