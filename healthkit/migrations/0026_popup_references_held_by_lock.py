"""The per-statement reference checks of new popups and popup events (migration 0023) are
skipped for the tables a transaction has declared held by `healthkit_references_hold()`.

`healthkit_references_hold('t1', 't2', ...)` takes ROW EXCLUSIVE on each table, in the order
given, then sets the transaction-local `healthkit.references_held` to their names. From then on
a delete (or id change) of a parent, whose guard takes SHARE on these child tables first (0023,
0024, venues 0004), waits for this transaction and then refuses while referred to; one that
committed before is not seen by this transaction's later statements (READ COMMITTED). So a
writer that reads the parents it refers to AFTER the call cannot leave a dangling reference, and
the anti-join per statement is not needed for its rows. Each trigger honours the setting only
for its own table, named in it; every other writer (ORM, raw SQL, COPY) is checked as before,
and so is every update. The exposure job (venues.exposure) is the one caller: its three
anti-joins were a quarter of a 50 k raise (docs/venues.md). Setting the GUC by hand bypasses
the lock: that is a bug in the caller, as it would be with `session_replication_role`.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION healthkit_references_hold(VARIADIC tables text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format('LOCK TABLE %I IN ROW EXCLUSIVE MODE', t);
    END LOOP;
    PERFORM set_config('healthkit.references_held', array_to_string(tables, ','), true);
END
$$;

DROP TRIGGER popupcase_refs_insert ON healthkit_popupcase;
CREATE TRIGGER popupcase_refs_insert AFTER INSERT ON healthkit_popupcase
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (NOT coalesce('healthkit_popupcase' = ANY (
        string_to_array(current_setting('healthkit.references_held', true), ',')), false))
    EXECUTE FUNCTION healthkit_refs_check('resident_id', 'communities_resident', 'policy_id', 'healthkit_popuppolicy');
DROP TRIGGER popupevent_refs_insert ON healthkit_popupevent;
CREATE TRIGGER popupevent_refs_insert AFTER INSERT ON healthkit_popupevent
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (NOT coalesce('healthkit_popupevent' = ANY (
        string_to_array(current_setting('healthkit.references_held', true), ',')), false))
    EXECUTE FUNCTION healthkit_refs_check('case_id', 'healthkit_popupcase', 'actor_id', 'communities_user');
"""

BACKWARD = """
DROP TRIGGER popupevent_refs_insert ON healthkit_popupevent;
CREATE TRIGGER popupevent_refs_insert AFTER INSERT ON healthkit_popupevent
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_check('case_id', 'healthkit_popupcase', 'actor_id', 'communities_user');
DROP TRIGGER popupcase_refs_insert ON healthkit_popupcase;
CREATE TRIGGER popupcase_refs_insert AFTER INSERT ON healthkit_popupcase
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_check('resident_id', 'communities_resident', 'policy_id', 'healthkit_popuppolicy');
DROP FUNCTION healthkit_references_hold(text[]);
"""


class Migration(migrations.Migration):

    dependencies = [
        ('healthkit', '0025_outbox_key_blanked_by_retention'),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
