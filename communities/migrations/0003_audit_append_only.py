"""The access audit becomes append-only in the database: a trigger refuses UPDATE and DELETE of
its rows (and UPDATE of the typed reasons, now kept in their own table so the retention job can
delete them without touching an audit row)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION communities_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'append-only table %: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER personaldataaccess_append_only
    BEFORE UPDATE OR DELETE ON communities_personaldataaccess
    FOR EACH ROW EXECUTE FUNCTION communities_refuse_change();
CREATE TRIGGER personaldataaccessreason_no_update
    BEFORE UPDATE ON communities_personaldataaccessreason
    FOR EACH ROW EXECUTE FUNCTION communities_refuse_change();
"""

DROP_APPEND_ONLY_SQL = """
DROP TRIGGER IF EXISTS personaldataaccessreason_no_update ON communities_personaldataaccessreason;
DROP TRIGGER IF EXISTS personaldataaccess_append_only ON communities_personaldataaccess;
DROP FUNCTION IF EXISTS communities_refuse_change();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('communities', '0002_seed_districts'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditAlert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('account', 'One account'), ('address', 'One client address')], max_length=8, verbose_name='kind')),
                ('ip', models.GenericIPAddressField(blank=True, null=True, verbose_name='client address')),
                ('residents', models.PositiveIntegerField(verbose_name='different residents')),
                ('window_minutes', models.PositiveIntegerField(verbose_name='within minutes')),
                ('raised_at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='raised at')),
                ('acknowledged_at', models.DateTimeField(blank=True, null=True, verbose_name='acknowledged at')),
            ],
            options={
                'verbose_name': 'enumeration alert',
                'verbose_name_plural': 'enumeration alerts',
                'ordering': ['-raised_at'],
            },
        ),
        migrations.CreateModel(
            name='PersonalDataAccessReason',
            fields=[
                ('access', models.OneToOneField(on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='reason_note', serialize=False, to='communities.personaldataaccess')),
                ('reason', models.CharField(max_length=200, verbose_name='reason')),
            ],
            options={
                'verbose_name': 'reason for an access',
                'verbose_name_plural': 'reasons for accesses',
            },
        ),
        migrations.RunSQL(
            "INSERT INTO communities_personaldataaccessreason (access_id, reason) "
            "SELECT id, reason FROM communities_personaldataaccess WHERE reason <> ''",
            migrations.RunSQL.noop,
        ),
        migrations.RemoveField(
            model_name='personaldataaccess',
            name='reason',
        ),
        migrations.AddField(
            model_name='personaldataaccess',
            name='ip',
            field=models.GenericIPAddressField(blank=True, null=True, verbose_name='client address'),
        ),
        migrations.AddIndex(
            model_name='personaldataaccess',
            index=models.Index(fields=['actor', 'at'], name='pda_actor_at_idx'),
        ),
        migrations.AddIndex(
            model_name='personaldataaccess',
            index=models.Index(condition=models.Q(('ip__isnull', False)), fields=['ip', 'at'], name='pda_ip_at_idx'),
        ),
        migrations.AddField(
            model_name='auditalert',
            name='acknowledged_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='acknowledged by'),
        ),
        migrations.AddField(
            model_name='auditalert',
            name='actor',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='account'),
        ),
        migrations.AddIndex(
            model_name='auditalert',
            index=models.Index(condition=models.Q(('acknowledged_at__isnull', True)), fields=['raised_at'], name='audit_alert_open_idx'),
        ),
        migrations.RunSQL(APPEND_ONLY_SQL, DROP_APPEND_ONLY_SQL),
    ]
