"""Shared by the benchmark scripts: a scratch database made anew for each filled run."""


def recreate_database(url: str, icu_locale: str | None = None) -> None:
    """Drop and create the database named by `url` (a benchmark's own, never the app's).
    `icu_locale` (e.g. "en-US"): its default collation is that ICU locale instead of the
    server's (as on a server initialised in a language's locale rather than C)."""
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if icu_locale:
            conn.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'")
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
