# The outbox key check lets retention blank a forgotten person's record key (it blanks every text field).

import django.db.models.functions.comparison
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('communities', '0005_verbose_names'),
        ('healthkit', '0024_outbox_references_checked_per_statement'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='outboxrecord',
            name='outbox_record_key_names_popup',
        ),
        migrations.AddConstraint(
            model_name='outboxrecord',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('case__isnull', True), models.Q(('idempotency_key__startswith', 'popup-'), _negated=True)), ('idempotency_key', ''), ('idempotency_key', django.db.models.functions.text.Concat(models.Value('popup-'), django.db.models.functions.comparison.Cast('case', models.CharField()), models.Value('-'), 'kind')), _connector='OR'), name='outbox_record_key_names_popup'),
        ),
    ]
