"""An outbox record's per-statement reference check (migration 0024) is skipped, as the popup's
and the event's are (0026), when the transaction has declared healthkit_outboxrecord held by
`healthkit_references_hold()`: ROW EXCLUSIVE taken before the writer reads the popups and
residents its records refer to, so a delete of one of them, whose guard takes SHARE on this
table first, waits for the writer and then refuses, and one that committed before is not seen.
The engine is the second caller (healthkit.engine, around its writing statement): at 1 M open
popups with 10,000 lifts the checks of its events and records took 64 ms of a 623 ms statement
(`EXPLAIN ANALYZE`, docs/engine.md). Every other writer, and every update, is checked as before.
"""

from django.db import migrations

FORWARD = """
DROP TRIGGER outboxrecord_refs_insert ON healthkit_outboxrecord;
CREATE TRIGGER outboxrecord_refs_insert AFTER INSERT ON healthkit_outboxrecord
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (NOT coalesce('healthkit_outboxrecord' = ANY (
        string_to_array(current_setting('healthkit.references_held', true), ',')), false))
    EXECUTE FUNCTION healthkit_refs_check('case_id', 'healthkit_popupcase', 'resident_id', 'communities_resident');
"""

BACKWARD = """
DROP TRIGGER outboxrecord_refs_insert ON healthkit_outboxrecord;
CREATE TRIGGER outboxrecord_refs_insert AFTER INSERT ON healthkit_outboxrecord
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_check('case_id', 'healthkit_popupcase', 'resident_id', 'communities_resident');
"""


class Migration(migrations.Migration):

    dependencies = [
        ('healthkit', '0026_popup_references_held_by_lock'),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
