"""The per-statement resident check of new test results (migration 0016) is skipped while the
transaction-local setting `healthkit.result_residents_held` is on.

The ingest sets it after taking the result table's ROW EXCLUSIVE lock and before it looks the
batch's residents up (healthkit.ingest._hold_result_residents): from then on a resident delete,
which takes SHARE on the result table first (0016), waits for the batch and then refuses, so the
residents the batch found still exist when it commits. The check is what a bulk COPY spent most
of its trigger time on (an anti-join of the batch's residents against the resident table); with
the WHEN false PostgreSQL neither runs the function nor collects the transition table. Every
other writer (ORM, raw SQL, a COPY outside the ingest) is checked as before, and so is an update.
"""

from django.db import migrations

FORWARD = """
DROP TRIGGER healthkit_result_resident_insert ON healthkit_testresult;
CREATE TRIGGER healthkit_result_resident_insert AFTER INSERT ON healthkit_testresult
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    WHEN (current_setting('healthkit.result_residents_held', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION healthkit_result_resident_check();
"""

BACKWARD = """
DROP TRIGGER healthkit_result_resident_insert ON healthkit_testresult;
CREATE TRIGGER healthkit_result_resident_insert AFTER INSERT ON healthkit_testresult
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION healthkit_result_resident_check();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('healthkit', '0021_engine_sweep_raises_left'),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
