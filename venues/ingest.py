"""Scan records in: bulk, idempotent ingest at city rates (tens of millions a day).

`scans_ingest(records=[...], client=..., batch_id=...)`: each record is
`{"id_number": ..., "venue": "<venue code>", "scanned_at": "<ISO 8601 with offset>"}` (plus an
optional `name` that registers an unknown resident, as healthkit's ingest does). Records are
validated in plain Python and reported by index (never echoing an ID number); good ones are
written with psycopg COPY into a temporary staging table and one
`INSERT ... ON CONFLICT DO NOTHING` on the natural key (venue, scanned_at, resident), so a
retried scan is counted as a duplicate. A client `batch_id` replays the stored answer.

Scans that land inside an active risk window (late scans) mark that window `exposure_due` in
the same statement; the exposure job picks it up (on commit, or the beat sweep).
"""

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _

from communities import pii
from communities.models import Resident, User
from healthkit import clock, inputs
from healthkit.errors import ApplicationError
from healthkit.ingest import (
    MAX_RECORDS,
    IngestResult,
    RecordError,
    _fast_instant,
    _field,
    _forget_unused_residents,
    _not_future,
    _record_name,
    _resolve_residents,
    before_birth_error,
    birth_start,
    refresh_year_window,
)
from venues.models import ScanBatch, Venue

KIND = "venue_scans"
VENUE_CODE_MAX = Venue._meta.get_field("code").max_length
STAGE = "venues_scan_stage"

# Constant SQL (no input): staged rows in, late scans inside active windows mark them due.
_INSERT = """
WITH ins AS (
    INSERT INTO venues_venuescan (venue_id, resident_id, scanned_at, received_at)
    SELECT venue_id, resident_id, scanned_at, received_at FROM venues_scan_stage
    ON CONFLICT DO NOTHING
    RETURNING venue_id, scanned_at
),
hit AS (
    -- Always take the window's row lock (never skip a row already marked due): a job running
    -- right now clears the flag when it commits, and must not miss these scans. Windows are
    -- locked in id order so two batches never deadlock.
    SELECT w.id FROM venues_riskwindow w
    WHERE w.state = 'active'
      AND EXISTS (SELECT 1 FROM ins WHERE ins.venue_id = w.venue_id
                  AND ins.scanned_at >= w.starts_at AND ins.scanned_at < w.ends_at)
    ORDER BY w.id
    FOR UPDATE
),
due AS (
    UPDATE venues_riskwindow w SET exposure_due = true
    FROM hit WHERE w.id = hit.id
    RETURNING w.id
)
SELECT (SELECT count(*) FROM ins), (SELECT coalesce(array_agg(id), '{}') FROM due)
"""


def copy_scans(rows: list[tuple[int, int, Any, Any]]) -> tuple[int, list[int]]:
    """(venue_id, resident_id, scanned_at, received_at) rows → (inserted, due window ids).
    COPY into a temporary staging table, then one INSERT ... ON CONFLICT DO NOTHING."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (venue_id bigint, resident_id bigint, "
            "scanned_at timestamptz, received_at timestamptz) ON COMMIT DELETE ROWS"
        )
        with cursor.cursor.copy(
            f"COPY {STAGE} (venue_id, resident_id, scanned_at, received_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(_INSERT)
        inserted, due = cursor.fetchone()
        cursor.execute(f"TRUNCATE {STAGE}")
    return inserted, list(due)


def _venue_ids(codes: set[str]) -> dict[str, int]:
    return dict(Venue.objects.filter(code__in=codes, active=True).values_list("code", "id"))


def scans_ingest(*, records: list[Any], client: User | None = None, batch_id: str | None = None,
                 resident: Resident | None = None) -> IngestResult:
    """Store a batch of scans. Idempotent per batch id and per scan; bad records are reported by
    index and skipped. Raises ApplicationError for a malformed batch (not a list, too many).

    `resident` (the simulator): every record is this resident's; no `id_number` needed."""
    if not isinstance(records, list):
        raise ApplicationError(_("`records` must be a list."))
    if len(records) > MAX_RECORDS:
        raise ApplicationError(
            _("At most %(n)d records per request; split the batch.") % {"n": MAX_RECORDS},
            extra={"max_records": MAX_RECORDS, "received": len(records)},
        )
    refresh_year_window()
    now = clock.now()
    result = IngestResult(kind=KIND, batch_id=batch_id, received=len(records))
    with transaction.atomic():
        if batch_id:
            batch, created = ScanBatch.objects.get_or_create(
                client=client, batch_id=batch_id, defaults={"received_at": now})
            if not created:
                stored = batch.response
                return IngestResult(kind=KIND, batch_id=batch_id, received=stored.get("received", 0),
                                    accepted=stored.get("accepted", 0),
                                    duplicates=stored.get("duplicates", 0),
                                    rejected=stored.get("rejected", []), replayed=True)

        parsed: list[tuple[int, str, str, Any]] = []  # (index, resident hash, venue code, scanned_at)
        people: dict[str, tuple[str, str]] = {}
        names: dict[str, tuple[str, int]] = {}
        id_cache: dict[str, str | ValidationError] = {}
        own_birth = f"{resident.birth_date() or dt.date(1890, 1, 1):%Y%m%d}" if resident is not None else ""
        window_opens = f"{inputs.year_window()[0]:04d}"
        for index, rec in enumerate(records):
            try:
                if not isinstance(rec, dict):
                    raise RecordError({"record": _("Each record is a JSON object.")})
                if resident is not None:
                    hashed = resident.id_hash
                else:
                    raw = rec.get("id_number")
                    if not isinstance(raw, str) or not raw:
                        raise RecordError({"id_number": _("This field is required.")})
                    hashed = id_cache.get(raw)
                    if hashed is None:
                        try:
                            number = pii.validate_id_number(raw)
                            hashed = pii.id_hash(number)
                            people.setdefault(hashed, (number, ""))
                        except ValidationError as exc:
                            hashed = exc
                        id_cache[raw] = hashed
                    if isinstance(hashed, ValidationError):
                        raise RecordError({"id_number": hashed.messages[0]})
                    _record_name(rec, index, hashed, people, names)
                code = _field("venue", inputs.text, rec.get("venue"), max_length=VENUE_CODE_MAX)
                scanned = _not_future(_fast_instant(rec, "scanned_at"), now, "scanned_at")
                birth = own_birth or people[hashed][0][6:14]  # YYYYMMDD
                if birth[:4] >= window_opens and scanned < birth_start(birth):
                    raise before_birth_error("scanned_at")  # (born before the window: no instant precedes it)
                parsed.append((index, hashed, inputs.venue_code(code), scanned))
            except RecordError as exc:
                result.rejected.append({"index": index, "errors": exc.errors})
            except KeyError as exc:
                result.rejected.append({"index": index, "errors": {exc.args[0]: _("This field is required.")}})
            except ValueError as exc:
                result.rejected.append({"index": index, "errors": {"record": str(exc)}})

        created: set[int] = set()
        residents = _resolve_residents(people, created=created) if people else {}
        if resident is not None:
            residents[resident.id_hash] = resident.pk
        venues = _venue_ids({code for _i, _h, code, _s in parsed}) if parsed else {}
        rows: list[tuple[int, int, Any, Any]] = []
        for index, hashed, code, scanned in parsed:
            venue_id = venues.get(code)
            if venue_id is None:
                result.rejected.append({"index": index, "errors": {"venue": _("No active venue has this code.")}})
                continue
            resident_id = residents.get(hashed)
            if resident_id is None:
                result.rejected.append({"index": index, "errors": {"id_number": _(
                    "No resident is registered with this ID number; send `name` to register them.")}})
                continue
            rows.append((venue_id, resident_id, scanned, now))
        result.rejected.sort(key=lambda r: r["index"])

        if created:
            _forget_unused_residents(created, (row[1] for row in rows))
        inserted, due = copy_scans(rows) if rows else (0, [])
        result.accepted = inserted
        result.duplicates = len(rows) - inserted
        if batch_id:
            ScanBatch.objects.filter(client=client, batch_id=batch_id).update(response=result.as_response())
        if due:
            from venues import tasks

            for window_id in due:
                transaction.on_commit(lambda w=window_id: tasks.venue_exposure_run.delay(w), robust=True)
    return result
