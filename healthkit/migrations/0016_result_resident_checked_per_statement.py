"""The resident reference of test results, held set-wise instead of by a foreign-key constraint.

A foreign key is checked row by row (at commit, since Django makes it deferrable): an index
probe and a row lock on the resident for every result, about a third of the database time of a
10,000-result ingest. These triggers keep the same guarantee per statement:

- a statement inserting or updating results fails (SQLSTATE 23503, an IntegrityError, as the
  foreign key did) if any of its rows names a resident that does not exist: one anti-join of the
  statement's new rows (a transition table) against the resident primary key;
- deleting residents (or changing a resident's id) first takes a SHARE lock on the result table,
  which waits for every transaction that is writing results (they may refer to these residents)
  to end, then refuses if any result refers to them. Residents are never deleted in normal work
  (retention anonymises them in place); the one delete on a hot path, the ingest taking back
  residents it registered in its own, uncommitted transaction, marks itself with the local setting
  `healthkit.forget_own_residents` and skips the lock: no other transaction can see those rows,
  so none can refer to them.

The checks assume READ COMMITTED (Django's default), where each statement of the trigger sees
what committed before it.
"""

import django.db.models.deletion
from django.db import migrations, models

FORWARD = """
CREATE FUNCTION healthkit_result_resident_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    SELECT n.resident_id INTO missing
      FROM (SELECT DISTINCT resident_id FROM new_rows) n
     WHERE NOT EXISTS (SELECT 1 FROM communities_resident r WHERE r.id = n.resident_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "healthkit_testresult" refers to a resident that does not exist'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (resident_id)=(%s) is not present in table "communities_resident".', missing);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER healthkit_result_resident_insert AFTER INSERT ON healthkit_testresult
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION healthkit_result_resident_check();
CREATE TRIGGER healthkit_result_resident_update AFTER UPDATE ON healthkit_testresult
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION healthkit_result_resident_check();

CREATE FUNCTION healthkit_resident_results_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    held bigint;
BEGIN
    IF coalesce(current_setting('healthkit.forget_own_residents', true), '') <> 'on' THEN
        LOCK TABLE healthkit_testresult IN SHARE MODE;
    END IF;
    SELECT o.id INTO held FROM old_rows o
     WHERE EXISTS (SELECT 1 FROM healthkit_testresult t WHERE t.resident_id = o.id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'delete on table "communities_resident" leaves test results without their resident'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "healthkit_testresult".', held);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER healthkit_resident_delete_results AFTER DELETE ON communities_resident
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION healthkit_resident_results_guard();
"""

# A resident's id never changes (nothing updates it); should anything try, the row-level check
# (only when the id is in the SET list and differs) refuses it if results refer to the old id.
FORWARD_ID = """
CREATE FUNCTION healthkit_resident_id_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE healthkit_testresult IN SHARE MODE;
    IF EXISTS (SELECT 1 FROM healthkit_testresult t WHERE t.resident_id = OLD.id) THEN
        RAISE EXCEPTION 'update on table "communities_resident" leaves test results without their resident'
            USING ERRCODE = 'foreign_key_violation',
                  DETAIL = format('Key (id)=(%s) is still referenced from table "healthkit_testresult".', OLD.id);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER healthkit_resident_id_results BEFORE UPDATE OF id ON communities_resident
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION healthkit_resident_id_guard();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS healthkit_resident_id_results ON communities_resident;
DROP FUNCTION IF EXISTS healthkit_resident_id_guard();
DROP TRIGGER IF EXISTS healthkit_resident_delete_results ON communities_resident;
DROP FUNCTION IF EXISTS healthkit_resident_results_guard();
DROP TRIGGER IF EXISTS healthkit_result_resident_update ON healthkit_testresult;
DROP TRIGGER IF EXISTS healthkit_result_resident_insert ON healthkit_testresult;
DROP FUNCTION IF EXISTS healthkit_result_resident_check();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('communities', '0005_verbose_names'),
        ('healthkit', '0015_outbox_batch_records'),
    ]

    operations = [
        migrations.AlterField(
            model_name='testresult',
            name='resident',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='test_results', to='communities.resident', verbose_name='resident'),
        ),
        migrations.RunSQL(FORWARD + FORWARD_ID, BACKWARD),
    ]
