"""Shared by the benchmark scripts: a scratch database made anew for each filled run."""


def recreate_database(url: str) -> None:
    """Drop and create the database named by `url` (a benchmark's own, never the app's)."""
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
