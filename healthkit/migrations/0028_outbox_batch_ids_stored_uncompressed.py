"""A batch record's id arrays (`case_ids`, `resident_ids`) are stored out of line without
compression (STORAGE EXTERNAL instead of the default EXTENDED, which compresses with pglz).
Compressing two arrays of 50 k ids was most of the cost of writing the exposure job's batch
record: 52 ms against 12 ms uncompressed for a window with 50 k visitors (the record alone,
alternated, bench database of `bench/venues.py --scale 1`), paid inside the job's statement, and
in a parallel first run after both halves. The arrays take 2.5 times the room (400 kB each for
50 k ids instead of 160 kB); there is one batch record per window version and engine batch.
Rows written before keep their compressed form; reads are unchanged."""

from django.db import migrations

FORWARD = """
ALTER TABLE healthkit_outboxrecord
    ALTER COLUMN case_ids SET STORAGE EXTERNAL,
    ALTER COLUMN resident_ids SET STORAGE EXTERNAL;
"""

BACKWARD = """
ALTER TABLE healthkit_outboxrecord
    ALTER COLUMN case_ids SET STORAGE EXTENDED,
    ALTER COLUMN resident_ids SET STORAGE EXTENDED;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('healthkit', '0027_outbox_references_held_by_lock'),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
