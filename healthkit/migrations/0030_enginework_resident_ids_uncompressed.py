"""A pending evaluation's residents (`EngineWork.resident_ids`) are stored out of line without
compression (STORAGE EXTERNAL instead of the default EXTENDED, which compresses with pglz), as
the batch record's arrays are (0028). A batch of 10,000 results writes ten rows of 1,000 ids
(8 kB each, above the size PostgreSQL compresses), inside the batch's transaction after its
COPY: pglz on them was about a quarter of the COPY backend's CPU in a bench batch (perf), and
writing the ten rows took 8.5 ms against 2.2 ms uncompressed with the residents of a batch in
sequence, 5.0 against 2.6 ms in no order (median of 41, alternated; docs/engine.md). The rows
live until their task runs; the room they take does not matter. Rows written before keep their
compressed form; reads are unchanged."""

from django.db import migrations

FORWARD = "ALTER TABLE healthkit_enginework ALTER COLUMN resident_ids SET STORAGE EXTERNAL;"
BACKWARD = "ALTER TABLE healthkit_enginework ALTER COLUMN resident_ids SET STORAGE EXTENDED;"


class Migration(migrations.Migration):

    dependencies = [
        ('healthkit', '0029_outbox_delivery_references_held_by_lock'),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
