"""An exposure row's set-wise reference check (0004) is skipped for a transaction that holds
venues_exposure through `healthkit_references_hold()` (healthkit 0026): the exposure job, which
takes the lock before it reads the window, the residents and the popups its rows name. Every
other writer is checked as before.
"""

from django.db import migrations

FORWARD = """
DROP TRIGGER exposure_refs_insert ON venues_exposure;
CREATE TRIGGER exposure_refs_insert AFTER INSERT ON venues_exposure
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (NOT coalesce('venues_exposure' = ANY (
        string_to_array(current_setting('healthkit.references_held', true), ',')), false))
    EXECUTE FUNCTION healthkit_refs_check('window_id', 'venues_riskwindow', 'resident_id', 'communities_resident',
                                          'case_id', 'healthkit_popupcase');
"""

BACKWARD = """
DROP TRIGGER exposure_refs_insert ON venues_exposure;
CREATE TRIGGER exposure_refs_insert AFTER INSERT ON venues_exposure
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_check('window_id', 'venues_riskwindow', 'resident_id', 'communities_resident',
                                          'case_id', 'healthkit_popupcase');
"""


class Migration(migrations.Migration):

    dependencies = [
        ('healthkit', '0026_popup_references_held_by_lock'),
        ('venues', '0004_exposure_references_checked_per_statement'),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
