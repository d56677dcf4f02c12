# A popup's outbox record unique by (popup, kind), its key `popup-<case>-<kind>` checked; only
# batch keys indexed. The (case, kind) index also serves the popup foreign key.

import django.db.models.deletion
import django.db.models.functions.comparison
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('communities', '0005_verbose_names'),
        ('healthkit', '0018_outbox_key_without_pattern_index'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='outboxrecord',
            name='outbox_record_idempotency_key_uniq',
        ),
        migrations.AlterField(
            model_name='outboxrecord',
            name='case',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='healthkit.popupcase', verbose_name='popup'),
        ),
        migrations.AddConstraint(
            model_name='outboxrecord',
            constraint=models.UniqueConstraint(condition=models.Q(('case__isnull', False)), fields=('case', 'kind'), name='outbox_record_one_per_popup_change'),
        ),
        migrations.AddConstraint(
            model_name='outboxrecord',
            constraint=models.UniqueConstraint(condition=models.Q(('case__isnull', True)), fields=('idempotency_key',), name='outbox_batch_key_uniq'),
        ),
        migrations.AddConstraint(
            model_name='outboxrecord',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('case__isnull', True), models.Q(('idempotency_key__startswith', 'popup-'), _negated=True)), ('idempotency_key', django.db.models.functions.text.Concat(models.Value('popup-'), django.db.models.functions.comparison.Cast('case', models.CharField()), models.Value('-'), 'kind')), _connector='OR'), name='outbox_record_key_names_popup'),
        ),
    ]
