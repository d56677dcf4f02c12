"""How PostgreSQL would run a queryset, for the tests that require an index to serve a query."""

from django.db import connection


def explain(qs, *, sort: bool = True) -> str:
    """The EXPLAIN text of `qs` with sequential scans (and, with sort=False, explicit sorts)
    priced out, so that a test's few rows do not hide which index the query can use. Inside
    the test's transaction: the settings end with it."""
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        if not sort:
            cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())
