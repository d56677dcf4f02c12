"""Outbox records' popup and resident, and deliveries' record, endpoint and resident, held by the
set-wise reference triggers of migration 0023 instead of foreign keys checked row by row.

An exposure run that withdraws 25,000 popups writes 25,000 single records and as many
deliveries: 125,000 foreign-key checks, each a probe and a FOR KEY SHARE lock written to the
parent row (the popup, the resident, the record). Now each statement's new rows are checked by
one anti-join per reference; a parent's delete waits for the writers, then refuses while
referred to (0023). The delivery's own record index repeated delivery_once_per_endpoint
(record, endpoint) and is dropped.
"""

import django.db.models.deletion
from django.db import migrations, models

FORWARD = """
CREATE TRIGGER outboxrecord_refs_insert AFTER INSERT ON healthkit_outboxrecord
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_check('case_id', 'healthkit_popupcase', 'resident_id', 'communities_resident');
CREATE TRIGGER outboxrecord_case_update AFTER UPDATE OF case_id ON healthkit_outboxrecord
    FOR EACH ROW WHEN (OLD.case_id IS DISTINCT FROM NEW.case_id)
    EXECUTE FUNCTION healthkit_ref_row_check('case_id', 'healthkit_popupcase');
CREATE TRIGGER outboxrecord_resident_update AFTER UPDATE OF resident_id ON healthkit_outboxrecord
    FOR EACH ROW WHEN (OLD.resident_id IS DISTINCT FROM NEW.resident_id)
    EXECUTE FUNCTION healthkit_ref_row_check('resident_id', 'communities_resident');
CREATE TRIGGER outboxdelivery_refs_insert AFTER INSERT ON healthkit_outboxdelivery
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_check('record_id', 'healthkit_outboxrecord', 'endpoint_id',
                                          'healthkit_downstreamendpoint', 'resident_id', 'communities_resident');
CREATE TRIGGER outboxdelivery_record_update AFTER UPDATE OF record_id ON healthkit_outboxdelivery
    FOR EACH ROW WHEN (OLD.record_id IS DISTINCT FROM NEW.record_id)
    EXECUTE FUNCTION healthkit_ref_row_check('record_id', 'healthkit_outboxrecord');
CREATE TRIGGER outboxdelivery_endpoint_update AFTER UPDATE OF endpoint_id ON healthkit_outboxdelivery
    FOR EACH ROW WHEN (OLD.endpoint_id IS DISTINCT FROM NEW.endpoint_id)
    EXECUTE FUNCTION healthkit_ref_row_check('endpoint_id', 'healthkit_downstreamendpoint');
CREATE TRIGGER outboxdelivery_resident_update AFTER UPDATE OF resident_id ON healthkit_outboxdelivery
    FOR EACH ROW WHEN (OLD.resident_id IS DISTINCT FROM NEW.resident_id)
    EXECUTE FUNCTION healthkit_ref_row_check('resident_id', 'communities_resident');

CREATE TRIGGER popupcase_delete_outbox AFTER DELETE ON healthkit_popupcase
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_guard('healthkit_outboxrecord', 'case_id');
CREATE TRIGGER popupcase_id_outbox BEFORE UPDATE OF id ON healthkit_popupcase
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION healthkit_ref_id_guard('healthkit_outboxrecord', 'case_id');
CREATE TRIGGER resident_delete_outbox AFTER DELETE ON communities_resident
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_guard('healthkit_outboxrecord', 'resident_id',
                                          'healthkit_outboxdelivery', 'resident_id');
CREATE TRIGGER resident_id_outbox BEFORE UPDATE OF id ON communities_resident
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION healthkit_ref_id_guard('healthkit_outboxrecord', 'resident_id',
                                            'healthkit_outboxdelivery', 'resident_id');
CREATE TRIGGER outboxrecord_delete_deliveries AFTER DELETE ON healthkit_outboxrecord
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_guard('healthkit_outboxdelivery', 'record_id');
CREATE TRIGGER outboxrecord_id_deliveries BEFORE UPDATE OF id ON healthkit_outboxrecord
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION healthkit_ref_id_guard('healthkit_outboxdelivery', 'record_id');
CREATE TRIGGER endpoint_delete_deliveries AFTER DELETE ON healthkit_downstreamendpoint
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_guard('healthkit_outboxdelivery', 'endpoint_id');
CREATE TRIGGER endpoint_id_deliveries BEFORE UPDATE OF id ON healthkit_downstreamendpoint
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION healthkit_ref_id_guard('healthkit_outboxdelivery', 'endpoint_id');
"""

BACKWARD = """
DROP TRIGGER IF EXISTS endpoint_id_deliveries ON healthkit_downstreamendpoint;
DROP TRIGGER IF EXISTS endpoint_delete_deliveries ON healthkit_downstreamendpoint;
DROP TRIGGER IF EXISTS outboxrecord_id_deliveries ON healthkit_outboxrecord;
DROP TRIGGER IF EXISTS outboxrecord_delete_deliveries ON healthkit_outboxrecord;
DROP TRIGGER IF EXISTS resident_id_outbox ON communities_resident;
DROP TRIGGER IF EXISTS resident_delete_outbox ON communities_resident;
DROP TRIGGER IF EXISTS popupcase_id_outbox ON healthkit_popupcase;
DROP TRIGGER IF EXISTS popupcase_delete_outbox ON healthkit_popupcase;
DROP TRIGGER IF EXISTS outboxdelivery_resident_update ON healthkit_outboxdelivery;
DROP TRIGGER IF EXISTS outboxdelivery_endpoint_update ON healthkit_outboxdelivery;
DROP TRIGGER IF EXISTS outboxdelivery_record_update ON healthkit_outboxdelivery;
DROP TRIGGER IF EXISTS outboxdelivery_refs_insert ON healthkit_outboxdelivery;
DROP TRIGGER IF EXISTS outboxrecord_resident_update ON healthkit_outboxrecord;
DROP TRIGGER IF EXISTS outboxrecord_case_update ON healthkit_outboxrecord;
DROP TRIGGER IF EXISTS outboxrecord_refs_insert ON healthkit_outboxrecord;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('communities', '0005_verbose_names'),
        ('healthkit', '0023_popup_references_checked_per_statement'),
    ]

    operations = [
        migrations.AlterField(
            model_name='outboxdelivery',
            name='endpoint',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='deliveries', to='healthkit.downstreamendpoint', verbose_name='endpoint'),
        ),
        migrations.AlterField(
            model_name='outboxdelivery',
            name='record',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='healthkit.outboxrecord', verbose_name='record'),
        ),
        migrations.AlterField(
            model_name='outboxdelivery',
            name='resident',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='communities.resident', verbose_name='resident'),
        ),
        migrations.AlterField(
            model_name='outboxrecord',
            name='case',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='healthkit.popupcase', verbose_name='popup'),
        ),
        migrations.AlterField(
            model_name='outboxrecord',
            name='resident',
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='communities.resident', verbose_name='resident'),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
