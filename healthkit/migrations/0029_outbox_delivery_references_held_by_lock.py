"""An outbox delivery's per-statement reference check (migration 0024) is skipped, as the popup's,
the event's (0026) and the outbox record's (0027) are, when the transaction has declared
healthkit_outboxdelivery held by `healthkit_references_hold()`: ROW EXCLUSIVE taken before the
writer reads the endpoints and residents its deliveries refer to (the records are its own, written
in the same statement), so a delete of an endpoint, a resident or a record, whose guard takes
SHARE on this table first, waits for the writer and then refuses, and one that committed before
is not seen. The engine holds it beside the other three (healthkit.engine): with active endpoints
every change writes one delivery per endpoint, each checked three ways. Every other writer, and
every update, is checked as before.
"""

from django.db import migrations

FORWARD = """
DROP TRIGGER outboxdelivery_refs_insert ON healthkit_outboxdelivery;
CREATE TRIGGER outboxdelivery_refs_insert AFTER INSERT ON healthkit_outboxdelivery
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (NOT coalesce('healthkit_outboxdelivery' = ANY (
        string_to_array(current_setting('healthkit.references_held', true), ',')), false))
    EXECUTE FUNCTION healthkit_refs_check('record_id', 'healthkit_outboxrecord', 'endpoint_id',
                                          'healthkit_downstreamendpoint', 'resident_id', 'communities_resident');
"""

BACKWARD = """
DROP TRIGGER outboxdelivery_refs_insert ON healthkit_outboxdelivery;
CREATE TRIGGER outboxdelivery_refs_insert AFTER INSERT ON healthkit_outboxdelivery
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_check('record_id', 'healthkit_outboxrecord', 'endpoint_id',
                                          'healthkit_downstreamendpoint', 'resident_id', 'communities_resident');
"""


class Migration(migrations.Migration):

    dependencies = [
        ('healthkit', '0028_outbox_batch_ids_stored_uncompressed'),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
