"""A result's `lab` and `sample_id` compared byte by byte (collation "C"): they are opaque
identifiers, and every result written walks the unique key (lab, sample id, resident). Under any
other collation PostgreSQL compares each pair of texts through the locale (strcoll, or ICU),
and only "C" takes its plain memcmp path; the order of these columns means nothing to a reader
(the admin's column sort is the only one, now by code point). Measured in docs/engine.md
("Result ingest against a raw COPY"). One statement, so the unique index is rebuilt once (the
table itself is not rewritten: same type, only the collation changes); it holds the table's
ACCESS EXCLUSIVE lock while the index is rebuilt."""

from django.db import migrations, models

FORWARD = """
ALTER TABLE healthkit_testresult
    ALTER COLUMN lab TYPE varchar(64) COLLATE "C",
    ALTER COLUMN sample_id TYPE varchar(64) COLLATE "C";
"""

BACKWARD = """
ALTER TABLE healthkit_testresult
    ALTER COLUMN lab TYPE varchar(64) COLLATE "default",
    ALTER COLUMN sample_id TYPE varchar(64) COLLATE "default";
"""


class Migration(migrations.Migration):

    dependencies = [
        ('healthkit', '0030_enginework_resident_ids_uncompressed'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, BACKWARD)],
            state_operations=[
                migrations.AlterField(
                    model_name='testresult',
                    name='lab',
                    field=models.CharField(db_collation='C', max_length=64, verbose_name='lab'),
                ),
                migrations.AlterField(
                    model_name='testresult',
                    name='sample_id',
                    field=models.CharField(db_collation='C', max_length=64, verbose_name='sample id'),
                ),
            ],
        ),
    ]
