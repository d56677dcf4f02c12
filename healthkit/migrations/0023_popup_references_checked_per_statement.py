"""Popups' references (resident, policy) and popup events' popup, held set-wise instead of by
foreign-key constraints, as migration 0016 did for test results.

A foreign key is checked row by row: an index probe and a row lock (FOR KEY SHARE, written to
the parent row) per new row. Raising 50,000 venue popups checked 300,000 of them (popup
resident and policy, event popup, and the exposure row's window, resident and popup): more than
half of the job's time. An event's actor (none for the engine's and the job's events) is held
the same way and indexed only where there is one. The generic functions below keep the same guarantee per statement:

- `healthkit_refs_check()` (AFTER INSERT, FOR EACH STATEMENT, the new rows as the transition
  table `new_rows`; arguments: pairs of column and parent table): one anti-join per reference of
  the statement's distinct non-null values against the parent's primary key; a miss fails the
  statement with SQLSTATE 23503 (an IntegrityError, as the foreign key did);
- `healthkit_ref_row_check()` (AFTER UPDATE OF the column, FOR EACH ROW, only WHEN it changed;
  arguments: column, parent table): a changed reference is checked and its parent row locked
  FOR KEY SHARE, exactly as the foreign key did (nothing changes these columns in normal work);
- `healthkit_refs_guard()` (AFTER DELETE on the parent, FOR EACH STATEMENT, the deleted rows as
  `old_rows`; arguments: pairs of child table and column): first a SHARE lock on each child
  table, which waits for every transaction writing it (they may refer to these rows) to end,
  then a refusal if any child row refers to a deleted row. A resident delete marked with
  `healthkit.forget_own_residents` (the ingest taking back residents of its own uncommitted
  transaction, see 0016) skips the lock;
- `healthkit_ref_id_guard()` (BEFORE UPDATE OF id on the parent, FOR EACH ROW, only WHEN the id
  changes; same arguments): refuses a new id while child rows refer to the old one.

Ids never change and popups, policies and residents are not deleted in normal work; the guards
are there so that no writer (ORM, COPY, raw SQL) can leave a dangling reference. Django's
on_delete (PROTECT, CASCADE) still applies in the ORM. The checks assume READ COMMITTED
(Django's default), where each statement of a trigger sees what committed before it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FUNCTIONS = """
-- Sorted, not hashed, distinct values: the probes then walk the parent's key in order (a raise's
-- new popups have consecutive ids), about half the time of probing in hash order at 50 k rows.
CREATE FUNCTION healthkit_refs_check() RETURNS trigger LANGUAGE plpgsql SET enable_hashagg = off AS $$
DECLARE
    i int := 0;
    missing bigint;
BEGIN
    WHILE i < TG_NARGS LOOP
        EXECUTE format('SELECT n.v FROM (SELECT DISTINCT %1$I AS v FROM new_rows WHERE %1$I IS NOT NULL) n '
                       'WHERE NOT EXISTS (SELECT 1 FROM %2$I p WHERE p.id = n.v) LIMIT 1',
                       TG_ARGV[i], TG_ARGV[i + 1]) INTO missing;
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'insert or update on table "%" refers to a row of "%" that does not exist',
                TG_TABLE_NAME, TG_ARGV[i + 1]
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format('Key (%s)=(%s) is not present in table "%s".', TG_ARGV[i], missing,
                                      TG_ARGV[i + 1]);
        END IF;
        i := i + 2;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION healthkit_ref_row_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    value bigint;
    held int;
BEGIN
    EXECUTE format('SELECT ($1).%I', TG_ARGV[0]) INTO value USING NEW;
    IF value IS NOT NULL THEN
        -- EXECUTE leaves FOUND alone: the row's presence is read from INTO
        EXECUTE format('SELECT 1 FROM %I p WHERE p.id = $1 FOR KEY SHARE', TG_ARGV[1]) INTO held USING value;
        IF held IS NULL THEN
            RAISE EXCEPTION 'insert or update on table "%" refers to a row of "%" that does not exist',
                TG_TABLE_NAME, TG_ARGV[1]
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format('Key (%s)=(%s) is not present in table "%s".', TG_ARGV[0], value, TG_ARGV[1]);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION healthkit_refs_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    i int := 0;
    held bigint;
BEGIN
    WHILE i < TG_NARGS LOOP
        IF TG_TABLE_NAME <> 'communities_resident'
           OR coalesce(current_setting('healthkit.forget_own_residents', true), '') <> 'on' THEN
            EXECUTE format('LOCK TABLE %I IN SHARE MODE', TG_ARGV[i]);
        END IF;
        EXECUTE format('SELECT o.id FROM old_rows o WHERE EXISTS (SELECT 1 FROM %1$I c WHERE c.%2$I = o.id) LIMIT 1',
                       TG_ARGV[i], TG_ARGV[i + 1]) INTO held;
        IF held IS NOT NULL THEN
            RAISE EXCEPTION 'delete on table "%" leaves rows of "%" without their reference', TG_TABLE_NAME, TG_ARGV[i]
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format('Key (id)=(%s) is still referenced from table "%s".', held, TG_ARGV[i]);
        END IF;
        i := i + 2;
    END LOOP;
    RETURN NULL;
END
$$;

CREATE FUNCTION healthkit_ref_id_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    i int := 0;
    held boolean;
BEGIN
    WHILE i < TG_NARGS LOOP
        EXECUTE format('LOCK TABLE %I IN SHARE MODE', TG_ARGV[i]);
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %1$I c WHERE c.%2$I = $1)', TG_ARGV[i], TG_ARGV[i + 1])
            INTO held USING OLD.id;
        IF held THEN
            RAISE EXCEPTION 'update on table "%" leaves rows of "%" without their reference', TG_TABLE_NAME, TG_ARGV[i]
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format('Key (id)=(%s) is still referenced from table "%s".', OLD.id, TG_ARGV[i]);
        END IF;
        i := i + 2;
    END LOOP;
    RETURN NEW;
END
$$;
"""

TRIGGERS = """
CREATE TRIGGER popupcase_refs_insert AFTER INSERT ON healthkit_popupcase
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_check('resident_id', 'communities_resident', 'policy_id', 'healthkit_popuppolicy');
CREATE TRIGGER popupcase_resident_update AFTER UPDATE OF resident_id ON healthkit_popupcase
    FOR EACH ROW WHEN (OLD.resident_id IS DISTINCT FROM NEW.resident_id)
    EXECUTE FUNCTION healthkit_ref_row_check('resident_id', 'communities_resident');
CREATE TRIGGER popupcase_policy_update AFTER UPDATE OF policy_id ON healthkit_popupcase
    FOR EACH ROW WHEN (OLD.policy_id IS DISTINCT FROM NEW.policy_id)
    EXECUTE FUNCTION healthkit_ref_row_check('policy_id', 'healthkit_popuppolicy');
CREATE TRIGGER popupevent_refs_insert AFTER INSERT ON healthkit_popupevent
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_check('case_id', 'healthkit_popupcase', 'actor_id', 'communities_user');
CREATE TRIGGER popupevent_case_update AFTER UPDATE OF case_id ON healthkit_popupevent
    FOR EACH ROW WHEN (OLD.case_id IS DISTINCT FROM NEW.case_id)
    EXECUTE FUNCTION healthkit_ref_row_check('case_id', 'healthkit_popupcase');
CREATE TRIGGER popupevent_actor_update AFTER UPDATE OF actor_id ON healthkit_popupevent
    FOR EACH ROW WHEN (OLD.actor_id IS DISTINCT FROM NEW.actor_id)
    EXECUTE FUNCTION healthkit_ref_row_check('actor_id', 'communities_user');
CREATE TRIGGER user_delete_events AFTER DELETE ON communities_user
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_guard('healthkit_popupevent', 'actor_id');
CREATE TRIGGER user_id_events BEFORE UPDATE OF id ON communities_user
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION healthkit_ref_id_guard('healthkit_popupevent', 'actor_id');

CREATE TRIGGER resident_delete_popups AFTER DELETE ON communities_resident
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_guard('healthkit_popupcase', 'resident_id');
CREATE TRIGGER resident_id_popups BEFORE UPDATE OF id ON communities_resident
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION healthkit_ref_id_guard('healthkit_popupcase', 'resident_id');
CREATE TRIGGER policy_delete_popups AFTER DELETE ON healthkit_popuppolicy
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_guard('healthkit_popupcase', 'policy_id');
CREATE TRIGGER policy_id_popups BEFORE UPDATE OF id ON healthkit_popuppolicy
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION healthkit_ref_id_guard('healthkit_popupcase', 'policy_id');
CREATE TRIGGER popupcase_delete_events AFTER DELETE ON healthkit_popupcase
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION healthkit_refs_guard('healthkit_popupevent', 'case_id');
CREATE TRIGGER popupcase_id_events BEFORE UPDATE OF id ON healthkit_popupcase
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION healthkit_ref_id_guard('healthkit_popupevent', 'case_id');
"""

BACKWARD = """
DROP TRIGGER IF EXISTS popupcase_id_events ON healthkit_popupcase;
DROP TRIGGER IF EXISTS popupcase_delete_events ON healthkit_popupcase;
DROP TRIGGER IF EXISTS policy_id_popups ON healthkit_popuppolicy;
DROP TRIGGER IF EXISTS policy_delete_popups ON healthkit_popuppolicy;
DROP TRIGGER IF EXISTS resident_id_popups ON communities_resident;
DROP TRIGGER IF EXISTS resident_delete_popups ON communities_resident;
DROP TRIGGER IF EXISTS user_id_events ON communities_user;
DROP TRIGGER IF EXISTS user_delete_events ON communities_user;
DROP TRIGGER IF EXISTS popupevent_actor_update ON healthkit_popupevent;
DROP TRIGGER IF EXISTS popupevent_case_update ON healthkit_popupevent;
DROP TRIGGER IF EXISTS popupevent_refs_insert ON healthkit_popupevent;
DROP TRIGGER IF EXISTS popupcase_policy_update ON healthkit_popupcase;
DROP TRIGGER IF EXISTS popupcase_resident_update ON healthkit_popupcase;
DROP TRIGGER IF EXISTS popupcase_refs_insert ON healthkit_popupcase;
DROP FUNCTION IF EXISTS healthkit_ref_id_guard();
DROP FUNCTION IF EXISTS healthkit_refs_guard();
DROP FUNCTION IF EXISTS healthkit_ref_row_check();
DROP FUNCTION IF EXISTS healthkit_refs_check();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('communities', '0005_verbose_names'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('healthkit', '0022_result_resident_check_skipped_when_held'),
    ]

    operations = [
        migrations.AlterField(
            model_name='popupcase',
            name='policy',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='healthkit.popuppolicy', verbose_name='policy'),
        ),
        migrations.AlterField(
            model_name='popupcase',
            name='resident',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='popups', to='communities.resident', verbose_name='resident'),
        ),
        migrations.AlterField(
            model_name='popupevent',
            name='case',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='events', to='healthkit.popupcase', verbose_name='popup'),
        ),
        migrations.AlterField(
            model_name='popupevent',
            name='actor',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='actor'),
        ),
        migrations.AddIndex(
            model_name='popupevent',
            index=models.Index(condition=models.Q(('actor__isnull', False)), fields=['actor'], name='popupevent_actor_idx'),
        ),
        migrations.RunSQL(FUNCTIONS + TRIGGERS, BACKWARD),
    ]
