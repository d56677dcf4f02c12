"""A kept database connection (DATABASE_CONN_MAX_AGE > 0) that the server dropped between two
requests (a restart, a failover, a terminated backend) is replaced when the next request or task
starts, instead of failing that request with a 500."""

import pytest
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connections


@pytest.mark.django_db(transaction=True)
def test_a_dropped_kept_connection_is_replaced_when_the_next_request_starts():
    connection = connections[DEFAULT_DB_ALIAS]
    saved = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = 60
    try:
        # given a request that left its connection open for the next one
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        close_old_connections()  # request_finished
        # and the server terminating that backend between requests
        other = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            other.close()
        # when the next request starts and queries
        close_old_connections()  # request_started
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            # then it runs on a new connection
            assert cursor.fetchone()[0] != pid
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = saved
        connection.close()
