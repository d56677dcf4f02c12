"""An exposure row's window, resident and popup, held set-wise by healthkit's generic reference
triggers (healthkit migration 0023) instead of three foreign keys checked row by row. The
window's automatic index repeats exposure_once_per_window (window, resident) and is dropped;
the popup's is dropped too (nothing reads exposures by popup; a popup delete's guard scans).
"""

import django.db.models.deletion
from django.db import migrations, models

FORWARD = """
CREATE TRIGGER exposure_refs_insert AFTER INSERT ON venues_exposure
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_check('window_id', 'venues_riskwindow', 'resident_id', 'communities_resident',
                                          'case_id', 'healthkit_popupcase');
CREATE TRIGGER exposure_window_update AFTER UPDATE OF window_id ON venues_exposure
    FOR EACH ROW WHEN (OLD.window_id IS DISTINCT FROM NEW.window_id)
    EXECUTE FUNCTION healthkit_ref_row_check('window_id', 'venues_riskwindow');
CREATE TRIGGER exposure_resident_update AFTER UPDATE OF resident_id ON venues_exposure
    FOR EACH ROW WHEN (OLD.resident_id IS DISTINCT FROM NEW.resident_id)
    EXECUTE FUNCTION healthkit_ref_row_check('resident_id', 'communities_resident');
CREATE TRIGGER exposure_case_update AFTER UPDATE OF case_id ON venues_exposure
    FOR EACH ROW WHEN (OLD.case_id IS DISTINCT FROM NEW.case_id)
    EXECUTE FUNCTION healthkit_ref_row_check('case_id', 'healthkit_popupcase');

CREATE TRIGGER window_delete_exposures AFTER DELETE ON venues_riskwindow
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_guard('venues_exposure', 'window_id');
CREATE TRIGGER window_id_exposures BEFORE UPDATE OF id ON venues_riskwindow
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION healthkit_ref_id_guard('venues_exposure', 'window_id');
CREATE TRIGGER resident_delete_exposures AFTER DELETE ON communities_resident
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_guard('venues_exposure', 'resident_id');
CREATE TRIGGER resident_id_exposures BEFORE UPDATE OF id ON communities_resident
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION healthkit_ref_id_guard('venues_exposure', 'resident_id');
CREATE TRIGGER popupcase_delete_exposures AFTER DELETE ON healthkit_popupcase
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_guard('venues_exposure', 'case_id');
CREATE TRIGGER popupcase_id_exposures BEFORE UPDATE OF id ON healthkit_popupcase
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION healthkit_ref_id_guard('venues_exposure', 'case_id');
"""

BACKWARD = """
DROP TRIGGER IF EXISTS popupcase_id_exposures ON healthkit_popupcase;
DROP TRIGGER IF EXISTS popupcase_delete_exposures ON healthkit_popupcase;
DROP TRIGGER IF EXISTS resident_id_exposures ON communities_resident;
DROP TRIGGER IF EXISTS resident_delete_exposures ON communities_resident;
DROP TRIGGER IF EXISTS window_id_exposures ON venues_riskwindow;
DROP TRIGGER IF EXISTS window_delete_exposures ON venues_riskwindow;
DROP TRIGGER IF EXISTS exposure_case_update ON venues_exposure;
DROP TRIGGER IF EXISTS exposure_resident_update ON venues_exposure;
DROP TRIGGER IF EXISTS exposure_window_update ON venues_exposure;
DROP TRIGGER IF EXISTS exposure_refs_insert ON venues_exposure;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('communities', '0005_verbose_names'),
        ('healthkit', '0023_popup_references_checked_per_statement'),
        ('venues', '0003_verbose_names'),
    ]

    operations = [
        migrations.AlterField(
            model_name='exposure',
            name='case',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='healthkit.popupcase', verbose_name='case'),
        ),
        migrations.AlterField(
            model_name='exposure',
            name='resident',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='communities.resident', verbose_name='resident'),
        ),
        migrations.AlterField(
            model_name='exposure',
            name='window',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='exposures', to='venues.riskwindow', verbose_name='window'),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
