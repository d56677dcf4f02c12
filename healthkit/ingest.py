"""Signals in: bulk, idempotent ingest of the engine's inputs.

`ingest(kind=..., records=[...], client=..., batch_id=...)` validates each record with plain
Python (a DRF serializer per record is 4x slower, MACHINE-NOTES), reports bad records by index
(never echoing an ID number), keeps the good ones, and writes them set-wise: psycopg COPY into a
temporary staging table, then one `INSERT ... SELECT ... ON CONFLICT DO NOTHING`; test results,
the bulk of the traffic, by a binary COPY straight into their table while the records are still
being parsed (the staging way only when a result is already on record; _insert_test_results).
Residents are looked up on the server while Python validates the next records (_ResidentLookup);
a large batch of results in a transaction of its own streams: each chunk of records checked,
its residents looked up on a second connection and its rows written into the COPY while the
next chunk is checked (_streamed_rows), so Python and two server processes work at once.

Idempotency, two levels:
- batch: a client-chosen `batch_id` (per client and kind) stores the response; a replay returns
  it unchanged and writes nothing;
- record: test results by (lab, sample id, resident); every other signal by `record_id` (per
  client) or, without one, by a hash of the record's content. A retried record is a duplicate.

Residents are referenced by national ID number, found by its keyed hash. An unknown ID with a
`name` registers the resident (arrivals and results of people new to the city are exactly what
the rules are for); an unknown ID without a name is rejected for that record.

After the transaction commits, the affected residents are re-evaluated by Celery tasks
(chunks of EVALUATE_CHUNK ids).
"""

import datetime as dt
import functools
import gc
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg.errors import UniqueViolation

from communities import pii
from communities.models import Resident, User
from healthkit import clock, engine_work, inputs, second_connection
from healthkit.errors import ApplicationError
from healthkit.models import IngestBatch, PopupType

MAX_RECORDS = 10_000
NAME_MAX = inputs.NAME_MAX  # communities.Resident.name: a longer name is refused, never cut
_bad = inputs.has_bad_characters
EVALUATE_CHUNK = 1_000
LOOKUP_CHUNK = 1_000  # records validated per resident look-up sent to the server
STREAM_MIN = 2 * LOOKUP_CHUNK  # results from which a batch streams (_streamed_rows)
CLOCK_SKEW = dt.timedelta(minutes=10)
DRUG_CATEGORIES = ("fever", "cough", "anti_infection", "sore_throat")  # 退热、止咳、抗病毒/抗生素、治疗咽痛
SYMPTOMS = (  # the 11 symptoms a clinic must report
    "fever", "dry_cough", "fatigue", "sore_throat", "smell_taste_loss", "nasal_congestion",
    "runny_nose", "conjunctivitis", "muscle_pain", "diarrhoea", "shortness_of_breath",
)


class RecordError(Exception):
    """One record is invalid: {field: message}."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass
class IngestResult:
    kind: str
    batch_id: str | None
    received: int
    accepted: int = 0
    duplicates: int = 0
    updated: int = 0
    corrected: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    replayed: bool = False
    resident_ids: list[int] = field(default_factory=list)

    def as_response(self) -> dict[str, Any]:
        return {"kind": self.kind, "batch_id": self.batch_id, "received": self.received,
                "accepted": self.accepted, "duplicates": self.duplicates, "updated": self.updated,
                "corrected": self.corrected, "rejected": self.rejected, "replayed": self.replayed}


# --- field parsers (raise RecordError-friendly messages) ---------------------------------------

def _field(name: str, parse: Callable[..., Any], value: Any, **options: Any) -> Any:
    """One field through its healthkit.inputs parser; an InputError becomes this record's error."""
    try:
        return parse(value, **options)
    except inputs.InputError as exc:
        raise RecordError({name: exc.message}) from None


def _text(rec: dict, name: str, max_length: int, *, required: bool = True) -> str:
    return _field(name, inputs.text, rec.get(name), max_length=max_length, required=required, allow_int=True)


def _instant(rec: dict, name: str, *, required: bool = True) -> dt.datetime | None:
    value = rec.get(name)
    if value == "" and not required:  # an optional instant is left out or null; "" is no date-time
        raise RecordError({name: _("Must be an ISO 8601 date-time with a UTC offset.")})
    return _field(name, inputs.instant, value, required=required)


# The plausible years (inputs.year_window), set once per batch by ingest() for the fast paths.
_YEARS = (2019, 2100)
_OFFSET_LIMIT = dt.timedelta(hours=15, minutes=59)


def refresh_year_window() -> None:
    """Read the plausible years (settings, today) once per batch for _fast_instant."""
    global _YEARS
    _YEARS = inputs.year_window()


def _fast_instant(rec: dict, name: str) -> dt.datetime:
    """_instant for a required field, the usual valid value without the checks' overhead;
    anything else through _instant, which raises the message."""
    value = rec.get(name)
    if type(value) is str:  # noqa: E721 - exactly str, as fromisoformat wants
        try:
            instant = dt.datetime.fromisoformat(value)
        except ValueError:
            instant = None
        if (instant is not None and instant.tzinfo is not None and _YEARS[0] <= instant.year <= _YEARS[1]
                and -_OFFSET_LIMIT <= instant.utcoffset() <= _OFFSET_LIMIT):
            return instant
    return _instant(rec, name)


def _day_start(rec: dict, name: str) -> dt.datetime:
    """A date (YYYY-MM-DD, city time 00:00) or a date-time with offset."""
    value = rec.get(name)
    if isinstance(value, str) and len(value) == 10:
        day = _field(name, inputs.date, value)
        return dt.datetime.combine(day, dt.time(), tzinfo=timezone.get_default_timezone())
    return _instant(rec, name)


def _county(rec: dict, name: str) -> str:
    value = rec.get(name)
    if type(value) is str and len(value) == 6 and value.isascii() and value.isdigit():  # noqa: E721 - the usual case
        return value
    return _field(name, inputs.code, value, length=6,
                  what=_("A county is its 6-digit administrative division code."))


def _bool(rec: dict, name: str) -> bool:
    return _field(name, inputs.boolean, rec.get(name, False))


def _not_future(instant: dt.datetime, now: dt.datetime, name: str = "record") -> dt.datetime:
    if instant > now + CLOCK_SKEW:
        raise RecordError({name: _("Lies in the future.")})
    return instant


def _key(client_id: int | None, kind: str, rec: dict, content: Iterable[Any]) -> str:
    record_id = rec.get("record_id")
    if record_id not in (None, ""):
        if not (type(record_id) is str and len(record_id) <= 64 and not _bad(record_id)  # noqa: E721
                and record_id.strip() == record_id):
            record_id = _field("record_id", inputs.text, record_id, max_length=64, allow_int=True)
        return f"{client_id or 0}:{kind}:{record_id}"
    digest = hashlib.sha256(json.dumps([kind, *content], default=str).encode()).hexdigest()
    return f"sha256:{digest[:64]}"


_COPY_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_ID_CHECK = "10X98765432"


def _or_null(convert: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: "\\N" if value is None else convert(value)


# One converter per staging column type, to PostgreSQL's COPY text format (typed: no
# isinstance chain per value).
_COPY_TEXT: dict[str, Callable[[Any], str]] = {
    "varchar": _or_null(lambda value: value.translate(_COPY_ESCAPE)),
    "timestamptz": _or_null(dt.datetime.isoformat),
    "boolean": _or_null(lambda value: "t" if value else "f"),
    "bigint": _or_null(str),
    "smallint": _or_null(str),
}


def _id_number_and_hash(raw: str, key: bytes, today: str = "") -> tuple[str, str]:
    """(normalised ID number, its keyed hash as communities.pii.id_hash makes it); raises
    ValidationError with the message (never echoing the number). One number; a batch uses
    `_id_checker` once."""
    return _id_checker(key, today or f"{clock.today():%Y%m%d}")(raw)


def _id_checker(key: bytes, today: str) -> Callable[[str], tuple[str, str]]:
    """_id_number_and_hash for one batch, its key, hasher and date bound once: a fast path for
    the usual valid number, inline (10,000 numbers a batch; a call per test cost a third of the
    time); anything else goes through pii.validate_id_number."""
    hasher, check, past = _id_hasher(key), _ID_CHECK, _real_past_date
    validate = pii.validate_id_number

    def checked(raw: str) -> tuple[str, str]:
        # The usual number is already normalised (18 ASCII characters, upper-case X): no string
        # copies. Anything else (spaces, a lower-case x, a wrong digit) goes the slow way. The
        # check digit: the weights are 2 ** (17 - i) mod 11 and 13 = 2 (mod 11), so the weighted
        # sum is 2 * (the 17 digits read in base 13) mod 11: one C call, not 17 products.
        if (len(raw) == 18 and raw.isascii() and raw[:17].isdigit() and check[2 * int(raw[:17], 13) % 11] == raw[17]
                and raw[6:10] >= "1890" and past(raw[6:14], today)):
            return raw, hasher(raw)
        number = validate(raw)
        return number, hasher(number)

    return checked


@functools.lru_cache(maxsize=4)
def _id_pads(key: bytes) -> tuple[Any, Any]:
    """The SHA-256 states of HMAC(key, "id:" + ...) after the key's inner pad and "id:", and after
    its outer pad (RFC 2104 spelled out): a number's keyed hash is a copy of each, two updates."""
    block = 64  # SHA-256 block size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner_base = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner_base.update(b"id:")
    return inner_base, hashlib.sha256(bytes(b ^ 0x5C for b in key))


@functools.lru_cache(maxsize=4)
def _id_hasher(key: bytes) -> Callable[[str], str]:
    """HMAC-SHA256(key, "id:" + number), hex, exactly as pii.id_hash computes it, with the key's
    inner and outer pads (and the "id:" prefix) hashed once (_id_pads): per number, two copies of
    a hash state instead of a full HMAC set-up (about 3x faster)."""
    inner_base, outer_base = _id_pads(key)

    def hasher(number: str) -> str:
        inner = inner_base.copy()
        inner.update(number.encode())
        outer = outer_base.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    return hasher


@functools.lru_cache(maxsize=2)
def _birth_dates(today: str, first_year: int) -> dict[str, dt.datetime | None]:
    """The birth dates (YYYYMMDD) found plausible so far against `today`, each with its first
    instant (birth_start), or None for a year before `first_year` (the year window's: every
    instant the window lets in lies after it, no comparison needed). Filled as they are met: a
    dict look-up instead of the checks, for the about 50,000 possible dates."""
    return {}


@functools.lru_cache(maxsize=65_536)
def _real_past_date(yyyymmdd: str, today: str) -> bool:
    try:
        dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return yyyymmdd <= today


@functools.lru_cache(maxsize=65_536)
def birth_start(yyyymmdd: str) -> dt.datetime:
    """The first instant of a birth date (YYYYMMDD, from an ID number already checked): 00:00 city
    time (with the city's offset of the time, summer time 1986-1991 included), as UTC so that a
    comparison with a record's fixed-offset instant needs no zone look-up."""
    day = dt.datetime(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]), tzinfo=timezone.get_default_timezone())
    return day.astimezone(dt.UTC)


def before_birth_error(name: str) -> RecordError:
    """A record dated before the birth date in its ID number (never echoing the number)."""
    return RecordError({name: _("Lies before the resident's date of birth (as the ID number gives it).")})


def _record_name(rec: dict, index: int, hashed: str, people: dict[str, tuple[str, str]],
                 names: dict[str, tuple[str, int]]) -> None:
    """The record's `name` (registers an unknown resident): checked text, at most NAME_MAX
    characters (refused, never cut). One ID number with two names in one batch is a conflict:
    which is right is not ours to guess; the later record is reported, the first name stands."""
    name = _field("name", inputs.text, rec.get("name"), max_length=NAME_MAX, required=False)
    if not name:
        return
    first = names.setdefault(hashed, (name, index))
    if first[0] != name:
        raise RecordError({"name": _("Conflict: record %(first)d of this batch gives this ID number another "
                                     "name.") % {"first": first[1]}})
    if not people[hashed][1]:
        people[hashed] = (people[hashed][0], name)


# --- per-kind specs -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    table: str
    # staging columns: (name, SQL type); "resident_id" is filled in after resident resolution
    columns: tuple[tuple[str, str], ...]
    parse: Callable[..., tuple]
    has_resident: bool = True
    # A record sent again under the same key with newer facts (a stay that has ended, a
    # quarantine order shortened or extended): the SET list of ON CONFLICT (record_key) DO
    # UPDATE and the condition for a change. Empty: a repeat is a duplicate and changes nothing.
    upsert: tuple[str, str] | None = None
    # Run after staging, before the insert: marks the rows the staged ones correct as superseded
    # (so the insert no longer conflicts with them), RETURNING their resident ids.
    supersede: str | None = None
    # Run before `supersede`: stores the staged rows that an already current row corrected (they
    # arrived after their correction) as history, superseded on arrival, RETURNING resident ids.
    history: str | None = None
    # The record's first instant as (row position, field name): a signal dated before the
    # resident was born (the birth date in the ID number) is refused, at that field.
    since_birth: tuple[int, str] | None = None


def _parse_test_result(rec, *, now, client_id, resident_key=None):
    sampled, resulted = _fast_instant(rec, "sampled_at"), _fast_instant(rec, "resulted_at")
    _not_future(resulted, now, "resulted_at")
    if resulted < sampled:
        raise RecordError({"resulted_at": _("A result cannot come before its sample.")})
    outcome = rec.get("result")
    if type(outcome) is not str or outcome not in ("negative", "positive"):
        raise RecordError({"result": _('Must be "negative" or "positive".')})
    # The usual case inline (a non-empty string short enough before stripping); anything else
    # through _text / _bool, which raise the messages, in the same order as before.
    lab, sample_id = rec.get("lab"), rec.get("sample_id")
    lab = (lab.strip() if type(lab) is str and 0 < len(lab) <= 64 and not _bad(lab)  # noqa: E721
           else _text(rec, "lab", 64))
    sample_id = (sample_id.strip() if type(sample_id) is str and 0 < len(sample_id) <= 64  # noqa: E721
                 and not _bad(sample_id) else _text(rec, "sample_id", 64))
    if not lab or not sample_id:
        raise RecordError({"lab" if not lab else "sample_id": _("This field is required.")})
    other = rec.get("from_other_province", False)
    if other is not True and other is not False:
        other = _bool(rec, "from_other_province")
    return (lab, sample_id, sampled, resulted, outcome, other)


def test_result_parser(now: dt.datetime) -> Callable[[dict], tuple]:
    """_parse_test_result for one batch, the usual valid record checked in one pass of inline
    tests (no call per field, no exception; the limits bound once): a result is about 10,000
    records a batch and this is the ingest's largest Python part. Anything unusual (a missing,
    mistyped or refused field) goes through _parse_test_result, which gives the message."""
    first_year, last_year = _YEARS
    low, high = -_OFFSET_LIMIT, _OFFSET_LIMIT
    latest = now + CLOCK_SKEW
    parse_instant, bad = dt.datetime.fromisoformat, inputs._BAD_LINE.search
    outcomes = ("negative", "positive")

    def parse(rec: dict) -> tuple:
        try:
            sampled, resulted = rec["sampled_at"], rec["resulted_at"]
            lab, sample_id, outcome = rec["lab"], rec["sample_id"], rec["result"]
            other = rec.get("from_other_province", False)
            if (type(sampled) is str and type(resulted) is str  # noqa: E721 - exactly str
                    and type(lab) is str and 0 < len(lab) <= 64 and bad(lab) is None  # noqa: E721
                    and type(sample_id) is str and 0 < len(sample_id) <= 64  # noqa: E721
                    and bad(sample_id) is None and type(outcome) is str and outcome in outcomes  # noqa: E721
                    and (other is False or other is True)):
                sampled, resulted = parse_instant(sampled), parse_instant(resulted)
                lab, sample_id = lab.strip(), sample_id.strip()
                if (sampled.tzinfo is not None and resulted.tzinfo is not None
                        and first_year <= sampled.year <= last_year and first_year <= resulted.year <= last_year
                        and low <= sampled.utcoffset() <= high and low <= resulted.utcoffset() <= high
                        and sampled <= resulted <= latest and lab and sample_id):
                    return (lab, sample_id, sampled, resulted, outcome, other)
        except (KeyError, ValueError):
            pass
        return _parse_test_result(rec, now=now, client_id=None)

    return parse


def _parse_arrival(rec, *, now, client_id, resident_key):
    arrived = _not_future(_fast_instant(rec, "arrived_at"), now, "arrived_at")
    county = _county(rec, "from_county")
    return (arrived, county, _key(client_id, "arrival", rec, [resident_key, arrived, county]))


def _parse_stay(rec, *, now, client_id, resident_key):
    start, end = _fast_instant(rec, "from"), _instant(rec, "to", required=False)
    _not_future(start, now, "from")
    if end is not None and end < start:
        raise RecordError({"to": _("A stay cannot end before it starts.")})
    county, port = _county(rec, "county"), _bool(rec, "border_port")
    # The key leaves out the end (and the border-port flag): the same stay sent again once the
    # person has left closes the open one instead of adding a second (Spec.upsert).
    return (county, start, end, port, _key(client_id, "stay", rec, [resident_key, county, start]))


def _parse_local_case(rec, *, now, client_id, resident_key=None):
    county = _county(rec, "county")
    field_name = "date" if rec.get("date") is not None else "reported_at"
    if field_name == "date" and rec.get("reported_at") is not None:
        raise RecordError({"reported_at": _("Send date or reported_at, not both.")})
    reported = _not_future(_day_start(rec, field_name), now, field_name)
    return (county, reported, _key(client_id, "local_case", rec, [county, reported]))


def _parse_quarantine(rec, *, now, client_id, resident_key):
    start, end = _fast_instant(rec, "from"), _fast_instant(rec, "to")
    if end < start:
        raise RecordError({"to": _("A quarantine cannot end before it starts.")})
    # Keyed without its end: the order sent again with another end shortens or extends it.
    return (start, end, _key(client_id, "quarantine", rec, [resident_key, start]))


def _parse_medical(rec, *, now, client_id, resident_key):
    kind = rec.get("kind")
    if kind not in ("drug_purchase", "clinic_visit"):
        raise RecordError({"kind": _('Must be "drug_purchase" or "clinic_visit".')})
    # The detail the kind needs, and the other one, if sent, a valid value too (as the schema says).
    for name, allowed, needed in (("category", DRUG_CATEGORIES, kind == "drug_purchase"),
                                  ("symptom", SYMPTOMS, kind == "clinic_visit")):
        value = rec.get(name)
        if (needed or value is not None) and (type(value) is not str or value not in allowed):
            raise RecordError({name: _("One of: %(c)s.") % {"c": ", ".join(allowed)}})
    detail = rec["category"] if kind == "drug_purchase" else rec["symptom"]
    occurred = _not_future(_fast_instant(rec, "occurred_at"), now, "occurred_at")
    return (kind, detail, occurred, _key(client_id, "medical", rec, [resident_key, kind, detail, occurred]))


def _parse_assignment(rec, *, now, client_id, resident_key):
    try:  # read like every integer of the API: "3" as 3, never true or 3.0 (docs/inputs.md)
        popup_type = inputs.integer(rec.get("popup_type"))
    except inputs.InputError:
        popup_type = None
    if popup_type != PopupType.RISK_LINK:
        raise RecordError({"popup_type": _("Upstream assignments are popup type 3.")})
    reason = _text(rec, "reason", 200)
    assigned = _not_future(_fast_instant(rec, "assigned_at"), now, "assigned_at")
    return (3, reason, assigned, _key(client_id, "assignment", rec, [resident_key, reason, assigned]))


SPECS: dict[str, Spec] = {
    IngestBatch.Kind.TEST_RESULTS: Spec(
        "healthkit_testresult",
        (("lab", "varchar"), ("sample_id", "varchar"), ("sampled_at", "timestamptz"),
         ("resulted_at", "timestamptz"), ("result", "varchar"),
         ("from_other_province", "boolean")),
        _parse_test_result,
        since_birth=(2, "sampled_at"),
        # The same lab + sample id + resident with another result, resulted no earlier: the lab's
        # correction. Not a retry of a result already superseded (same result and resulted_at:
        # a late retry of the original must not undo its correction; index 0032).
        supersede="UPDATE healthkit_testresult t SET superseded_at = %s "
                  "FROM ingest_stage_healthkit_testresult s "
                  "WHERE t.resident_id = s.resident_id AND t.lab = s.lab AND t.sample_id = s.sample_id "
                  "AND t.superseded_at IS NULL AND t.result <> s.result AND t.resulted_at <= s.resulted_at "
                  "AND NOT EXISTS (SELECT 1 FROM healthkit_testresult h WHERE h.resident_id = s.resident_id "
                  "AND h.lab = s.lab AND h.sample_id = s.sample_id AND h.superseded_at IS NOT NULL "
                  "AND h.result = s.result AND h.resulted_at = s.resulted_at) "
                  "RETURNING t.resident_id",
        # Another result resulted before the current one (the original arriving after its
        # correction): kept as history, superseded on arrival; the correction stays current.
        history="INSERT INTO healthkit_testresult "
                "(resident_id, lab, sample_id, sampled_at, resulted_at, result, from_other_province, "
                "received_at, superseded_at) "
                "SELECT s.resident_id, s.lab, s.sample_id, s.sampled_at, s.resulted_at, s.result, "
                "s.from_other_province, %(at)s, %(at)s "
                "FROM ingest_stage_healthkit_testresult s JOIN healthkit_testresult t "
                "ON t.resident_id = s.resident_id AND t.lab = s.lab AND t.sample_id = s.sample_id "
                "AND t.superseded_at IS NULL "
                "WHERE t.result <> s.result AND t.resulted_at > s.resulted_at "
                "AND NOT EXISTS (SELECT 1 FROM healthkit_testresult h WHERE h.resident_id = s.resident_id "
                "AND h.lab = s.lab AND h.sample_id = s.sample_id AND h.superseded_at IS NOT NULL "
                "AND h.result = s.result AND h.resulted_at = s.resulted_at) "
                "RETURNING resident_id"),
    IngestBatch.Kind.ARRIVALS: Spec(
        "healthkit_arrival",
        (("arrived_at", "timestamptz"), ("from_county", "varchar"), ("record_key", "varchar")),
        _parse_arrival, since_birth=(0, "arrived_at")),
    IngestBatch.Kind.STAYS: Spec(
        "healthkit_stay",
        (("county", "varchar"), ("started_at", "timestamptz"), ("ended_at", "timestamptz"),
         ("border_port", "boolean"), ("record_key", "varchar")),
        _parse_stay,
        since_birth=(1, "from"),
        # an end is added (never taken away: a late retry of the open stay must not reopen it)
        upsert=("ended_at = coalesce(EXCLUDED.ended_at, t.ended_at), border_port = EXCLUDED.border_port",
                "t.ended_at IS DISTINCT FROM coalesce(EXCLUDED.ended_at, t.ended_at) "
                "OR t.border_port <> EXCLUDED.border_port")),
    IngestBatch.Kind.LOCAL_CASES: Spec(
        "healthkit_localcase",
        (("county", "varchar"), ("reported_at", "timestamptz"), ("record_key", "varchar")),
        _parse_local_case, has_resident=False),
    IngestBatch.Kind.QUARANTINE_ORDERS: Spec(
        "healthkit_quarantineorder",
        (("starts_at", "timestamptz"), ("ends_at", "timestamptz"), ("record_key", "varchar")),
        _parse_quarantine,
        since_birth=(0, "from"),
        upsert=("ends_at = EXCLUDED.ends_at", "t.ends_at <> EXCLUDED.ends_at")),
    IngestBatch.Kind.MEDICAL_EVENTS: Spec(
        "healthkit_medicalevent",
        (("kind", "varchar"), ("detail", "varchar"), ("occurred_at", "timestamptz"),
         ("record_key", "varchar")),
        _parse_medical, since_birth=(2, "occurred_at")),
    IngestBatch.Kind.POPUP_ASSIGNMENTS: Spec(
        "healthkit_popupassignment",
        (("popup_type", "smallint"), ("reason", "varchar"), ("assigned_at", "timestamptz"),
         ("record_key", "varchar")),
        _parse_assignment, since_birth=(2, "assigned_at")),
}


# --- the service --------------------------------------------------------------------------------

# The residents with these keyed hashes (one text parameter, comma-separated): one text
# "id,position,id,position,..." of those found (position 0-based in the parameter), NULL if none:
# an index probe per hash, and a small answer (a large one would stall the server on a full
# socket while Python is busy). Positions instead of the ids in the hashes' order: the aggregate
# needs no sort (ORDER BY in string_agg cost about a third of the query).
_RESIDENTS_BY_HASH = """
SELECT string_agg((SELECT r.id::text || ',' || (k.n - 1) FROM communities_resident r WHERE r.id_hash = k.h), ',')
FROM unnest(string_to_array($1, ',')) WITH ORDINALITY AS k(h, n)
"""


def _resolve_residents(people: dict[str, tuple[str, str]], found: dict[str, int] | None = None,
                       created: set[int] | None = None) -> dict[str, int]:
    """{id_hash: (normalised id, name or '')} -> {id_hash: resident id}; registers unknown
    residents that came with a name (set-wise, conflict-safe). `found`: the ids already looked
    up (by _ResidentLookup) for all of `people`. `created` receives the ids this call inserted,
    so that the caller can take back those none of whose records was kept
    (_forget_unused_residents)."""
    if found is None:
        with connection.cursor() as cursor:
            # One text parameter (hex hashes joined by commas), not 10,000 placeholders or an
            # array the driver quotes element by element.
            cursor.execute("SELECT id_hash, id FROM communities_resident "
                           "WHERE id_hash = ANY(string_to_array(%s, ','))", [",".join(people)])
            found = dict(cursor.fetchall())
    new = [(h, number, name) for h, (number, name) in people.items() if h not in found and name]
    if new:
        with connection.cursor() as cursor:
            # RETURNING names the rows this transaction inserted; a resident registered
            # concurrently by another batch is left out (ON CONFLICT) and looked up instead.
            cursor.execute(
                "INSERT INTO communities_resident (name, id_encrypted, id_hash, id_masked, created_at) "
                "SELECT n, e, h, m, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS t(n, e, h, m) "
                "ON CONFLICT (id_hash) DO NOTHING RETURNING id_hash, id",
                [clock.now(), [name for _h, _n, name in new], [pii.encrypt(number) for _h, number, _m in new],
                 [h for h, _n, _m in new], [pii.mask_id(number) for _h, number, _m in new]],
            )
            inserted = dict(cursor.fetchall())
            missing = [h for h, _n, _m in new if h not in inserted]
            if missing:
                cursor.execute("SELECT id_hash, id FROM communities_resident WHERE id_hash = ANY(%s)", [missing])
                found.update(cursor.fetchall())
        found.update(inserted)
        if created is not None:
            created.update(inserted.values())
    return found


def _forget_unused_residents(created: set[int], used: Iterable[int]) -> None:
    """Take back the residents this transaction registered whose every record was rejected: a
    name and ID number sent with bad records are not kept (nothing else can refer to these rows
    yet: they are not committed)."""
    unused = created.difference(used)
    if unused:
        with connection.cursor() as cursor:
            # Rows of this uncommitted transaction, which no other can see or refer to: the
            # delete need not wait for the transactions writing results (migration 0016).
            cursor.execute("SELECT set_config('healthkit.forget_own_residents', 'on', true)")
            cursor.execute("DELETE FROM communities_resident WHERE id = ANY(%s)", [sorted(unused)])
            cursor.execute("SELECT set_config('healthkit.forget_own_residents', 'off', true)")


class _ResidentLookup:
    """Resident ids by keyed hash, looked up a chunk of records at a time while Python goes on
    validating the next chunk (one query in flight on the connection; see _query_in_background):
    on this transaction's connection, or on `other` (_lookup_connection)."""

    def __init__(self, other: "psycopg.Connection | None" = None) -> None:
        self.found: dict[str, int] = {}
        self._other = other
        self._pending: tuple[list[str], Callable[[], list[tuple[str | None, ...]]]] | None = None

    def send(self, hashes: list[str]) -> None:
        self.collect()
        if hashes:
            pgconn = self._other.pgconn if self._other is not None else connection.connection.pgconn
            self._pending = (hashes, _query_in_background(_RESIDENTS_BY_HASH, [",".join(hashes)], pgconn))

    def collect(self) -> dict[str, int]:
        if self._pending is not None:
            (hashes, rows), self._pending = self._pending, None
            answer = rows()[0][0]
            if answer:
                values = answer.split(",")  # id, position, id, position, ...
                self.found.update(zip(map(hashes.__getitem__, map(int, values[1::2])), map(int, values[::2]),
                                      strict=True))
        return self.found

    def close(self) -> None:
        """Wait for the query in flight, if any; a look-up connection that failed is dropped
        (_lookup_connection opens another next time)."""
        try:
            self.collect()
        except BaseException:
            if self._other is not None:
                _lookups.__dict__.pop("connection", None)
                self._other.close()
            raise


# The look-up connection is this thread's second connection (healthkit.second_connection), shared
# with the exposure job's parallel first run; the names below are the ones this module used.
_lookups = second_connection._held
_lookup_connection = second_connection.second_connection
close_lookup_connection = second_connection.close_second_connection


def _copy_insert(spec: Spec, rows: list[tuple], received_at: dt.datetime,
                 updated: list[int] | None = None, corrected: list[int] | None = None) -> list[int]:
    """COPY rows into a temporary staging table, then INSERT ... ON CONFLICT DO NOTHING (or, for
    a kind with `Spec.upsert`, DO UPDATE of the record sent again with newer facts), every row
    stamped `received_at` (one parameter, not a column per row).
    Returns the resident ids (or 0s) of the rows actually inserted; `updated` receives those of
    the rows changed."""
    if spec.upsert is not None:
        # ON CONFLICT DO UPDATE may touch a row once per statement: the last of a key wins.
        rows = list({row[-1]: row for row in rows}.values())
    columns = (("resident_id", "bigint"), *spec.columns) if spec.has_resident else spec.columns
    names = ", ".join(name for name, _type in columns)
    returning = "resident_id" if spec.has_resident else "0"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS ingest_stage_{t} ({cols}) ON COMMIT DELETE ROWS".format(
                t=spec.table, cols=", ".join(f"{n} {t}" for n, t in columns))
        )
        with cursor.cursor.copy(f"COPY ingest_stage_{spec.table} ({names}) FROM STDIN") as copy:
            # COPY text built here, typed by column: faster than write_row's per-value adaptation.
            converters = [_COPY_TEXT[sql_type] for _name, sql_type in columns]
            copy.write("".join(
                "\t".join([convert(value) for convert, value in zip(converters, row, strict=True)]) + "\n"
                for row in rows
            ))
        history: list[int] = []
        if spec.history is not None:
            cursor.execute(spec.history, {"at": received_at})
            history = [row[0] for row in cursor.fetchall()]
            if corrected is not None:
                corrected.extend(history)
        if spec.supersede is not None:
            cursor.execute(spec.supersede, [received_at])
            if corrected is not None:
                corrected.extend(row[0] for row in cursor.fetchall())
        if spec.upsert is None:
            conflict = "ON CONFLICT DO NOTHING"
        else:
            assignments, changed = spec.upsert
            # only the same resident's record (a key reused for someone else changes nothing);
            # xmax = 0 tells an inserted row from an updated one
            conflict = (f"ON CONFLICT (record_key) DO UPDATE SET {assignments}, received_at = EXCLUDED.received_at "
                        f"WHERE t.resident_id = EXCLUDED.resident_id AND ({changed})")
        cursor.execute(
            # Table and column names come from SPECS (constants), never from the request.
            f"INSERT INTO {spec.table} AS t ({names}, received_at) "  # noqa: S608
            f"SELECT {names}, %s FROM ingest_stage_{spec.table} "
            f"{conflict} RETURNING {returning}, t.xmax = 0",
            [received_at],
        )
        inserted = history
        for resident_id, is_new in cursor.fetchall():
            if is_new:
                inserted.append(resident_id)
            elif updated is not None:
                updated.append(resident_id)
        cursor.execute(f"TRUNCATE ingest_stage_{spec.table}")
    return inserted


_RESULT_COLUMNS = ("resident_id, lab, sample_id, sampled_at, resulted_at, result, "
                   "from_other_province, received_at")
_RESULT_TYPES = ("int8", "varchar", "varchar", "timestamptz", "timestamptz", "varchar", "bool", "timestamptz")


_query_in_background = second_connection.query_in_background


def _resident_pass(keys: list[str | None], people: dict[str, tuple[str, str]], new_hashes: list[str],
                   result: IngestResult, skip: set[int]) -> Callable[[int, Any], None]:
    """Pass 1 of a batch, one record at a time: the record's ID number checked and hashed
    (`keys`), its person noted (`people`, `new_hashes` in the order first seen) with the name that
    registers them; a bad record reported and added to `skip`."""
    id_and_hash = _id_checker(settings.PII_HASH_KEY.encode(), f"{clock.today():%Y%m%d}")
    names: dict[str, tuple[str, int]] = {}  # id hash -> (first name sent, its record index)
    id_cache: dict[str, str | Exception] = {}

    def first_pass(index: int, rec: Any) -> None:
        try:
            if not isinstance(rec, dict):
                raise RecordError({"record": _("Each record is a JSON object.")})
            raw = rec.get("id_number")
            if not isinstance(raw, str) or not raw:
                raise RecordError({"id_number": _("This field is required.")})
            hashed = id_cache.get(raw)
            if hashed is None:
                try:
                    number, hashed = id_and_hash(raw)
                    id_cache[raw] = hashed
                    if hashed not in people:
                        people[hashed] = (number, "")
                        new_hashes.append(hashed)
                except ValidationError as exc:
                    hashed = exc
                    id_cache[raw] = exc
            if isinstance(hashed, ValidationError):
                raise RecordError({"id_number": hashed.messages[0]})
            if "name" in rec:
                _record_name(rec, index, hashed, people, names)
            keys[index] = hashed
        except RecordError as exc:
            result.rejected.append({"index": index, "errors": exc.errors})
            skip.add(index)

    return first_pass


def _result_chunk_pass(records: list[Any], keys: list[str | None], people: dict[str, tuple[str, str]],
                       new_hashes: list[str], first_pass: Callable[[int, Any], None],
                       now: dt.datetime) -> Callable[[range], list[tuple | None]]:
    """Pass 1 of a streamed batch of results on a chunk of records, with pass 2's field checks
    fused in for the usual record: a dict without `name` whose ID number is already in normal
    form and valid and whose fields pass test_result_parser's inline tests is checked, hashed and
    parsed in one go, in one loop (no call per record or per check: a batch is 10,000 records
    and each call costs about as much as a check). Its row (without the resident) is returned in
    the record's place; any other record goes through `first_pass` (None in its place) and then
    `parsed`, the two passes as before, so a record's first error is unchanged. The tests are
    the same as _id_checker's and test_result_parser's fast paths, and give the same number,
    hash and row (tests/healthkit/test_ingest_fast_paths.py)."""
    inner_copy, outer_copy = (state.copy for state in _id_pads(settings.PII_HASH_KEY.encode()))
    today, check = f"{clock.today():%Y%m%d}", _ID_CHECK
    first_year, last_year = _YEARS
    births, unseen, window_opens = _birth_dates(today, first_year), object(), f"{first_year:04d}"
    latest = now + CLOCK_SKEW
    parse_instant, bad = dt.datetime.fromisoformat, inputs._BAD_LINE.search
    outcomes = ("negative", "positive")
    zones: set[dt.tzinfo] = set()  # the fixed offsets of this batch's instants found within the limits

    def birth_ok(birth: str) -> dt.datetime | None | bool:
        """A birth date (YYYYMMDD) not seen yet: real, from 1890, not after today; its first
        instant (birth_start; None before the year window: nothing in the window precedes it), or
        False."""
        if birth[:4] >= "1890" and _real_past_date(birth, today):
            births[birth] = start = birth_start(birth) if birth[:4] >= window_opens else None
            return start
        return False

    def zone_ok(zone: dt.tzinfo | None) -> bool:
        """An offset not seen yet in this batch: a fixed one (all fromisoformat gives) within the
        limits."""
        if type(zone) is dt.timezone and -_OFFSET_LIMIT <= zone.utcoffset(None) <= _OFFSET_LIMIT:  # noqa: E721
            zones.add(zone)
            return True
        return False

    def chunk_pass(chunk: range) -> list[tuple | None]:
        rows: list[tuple | None] = []
        keep = rows.append
        for index in chunk:
            rec = records[index]
            if type(rec) is dict and "name" not in rec:  # noqa: E721 - exactly dict, as JSON gives
                try:
                    raw, sampled, resulted = rec["id_number"], rec["sampled_at"], rec["resulted_at"]
                    lab, sample_id, outcome = rec["lab"], rec["sample_id"], rec["result"]
                    other = rec.get("from_other_province", False)
                    # (printable ASCII has no bad character: the regex only for anything else)
                    if (type(raw) is str and len(raw) == 18 and raw.isascii() and raw[:17].isdigit()  # noqa: E721
                            and check[2 * int(raw[:17], 13) % 11] == raw[17]
                            and ((born := births.get(raw[6:14], unseen)) is not unseen
                                 or (born := birth_ok(raw[6:14])) is not False)
                            and type(sampled) is str and type(resulted) is str  # noqa: E721
                            and type(lab) is str and 0 < len(lab) <= 64  # noqa: E721
                            and (lab.isascii() and lab.isprintable() or bad(lab) is None)
                            and type(sample_id) is str and 0 < len(sample_id) <= 64  # noqa: E721
                            and (sample_id.isascii() and sample_id.isprintable() or bad(sample_id) is None)
                            and type(outcome) is str and outcome in outcomes  # noqa: E721
                            and (other is False or other is True)):
                        sampled, resulted = parse_instant(sampled), parse_instant(resulted)
                        lab, sample_id = lab.strip(), sample_id.strip()
                        if ((sampled.tzinfo in zones or zone_ok(sampled.tzinfo))
                                and (resulted.tzinfo in zones or zone_ok(resulted.tzinfo))
                                and first_year <= sampled.year <= last_year and first_year <= resulted.year <= last_year
                                and sampled <= resulted <= latest and (born is None or born <= sampled)
                                and lab and sample_id):
                            inner = inner_copy()
                            inner.update(raw.encode())
                            outer = outer_copy()
                            outer.update(inner.digest())
                            hashed = outer.hexdigest()
                            if hashed not in people:
                                people[hashed] = (raw, "")
                                new_hashes.append(hashed)
                            keys[index] = hashed
                            keep((lab, sample_id, sampled, resulted, outcome, other))
                            continue
                except (KeyError, ValueError):
                    pass
            first_pass(index, rec)
            keep(None)
        return rows

    return chunk_pass


def _streamed_rows(records: list[Any], chunk_pass: Callable[[range], list[tuple | None]],
                   parsed: Callable[[int, Any], tuple | None], skip: set[int], new_hashes: list[str],
                   keys: list[str | None], waiting: list[tuple[int, tuple]]) -> Iterator[tuple]:
    """Both passes a chunk of LOOKUP_CHUNK records at a time (pass 1 and, for the usual record,
    pass 2 by `chunk_pass`: _result_chunk_pass), the good rows with their resident yielded as
    they are parsed (into the COPY on this connection). Each chunk's residents are
    looked up on a second connection (_lookup_connection) while Python parses the chunk before
    it and the server writes that one's rows: the two backends and Python work at once. A row
    whose resident was not found goes to `waiting` (its resident id unknown yet).

    The look-ups' connection sees what committed before each look-up; the caller's transaction
    has written nothing else (ingest() streams only in a transaction of its own) and holds the
    result table's ROW EXCLUSIVE lock from before the first look-up (_hold_result_residents), so
    a resident found cannot be deleted until this transaction ends, as on one connection."""
    lookup = _ResidentLookup(_lookup_connection())
    found = lookup.found
    try:
        sent = 0
        chunks = [range(start, min(start + LOOKUP_CHUNK, len(records)))
                  for start in range(0, len(records), LOOKUP_CHUNK)]
        ready: list[tuple | None] = []  # the rows of the chunk before as pass 1 left them (None: not yet)
        for n, chunk in enumerate([*chunks, None]):
            checked = chunk_pass(chunk) if chunk is not None else []
            before = chunks[n - 1] if n else None
            if before is not None:
                lookup.collect()
            if chunk is not None:
                lookup.send(new_hashes[sent:])
                sent = len(new_hashes)
            if before is None:
                ready = checked
                continue
            before_rows, ready = ready, checked
            for index, row in zip(before, before_rows, strict=True):
                if row is None:
                    if index in skip:
                        continue
                    row = parsed(index, records[index])
                    if row is None:
                        continue
                resident_id = found.get(keys[index])
                if resident_id is None:
                    waiting.append((index, row))
                else:
                    yield (resident_id, *row)
    finally:
        lookup.close()


def _insert_test_results(rows: Iterable[tuple], received_at: dt.datetime, corrected: list[int],
                         before_finish: Callable[[list[tuple]], None] | None = None,
                         ) -> tuple[list[tuple], list[int], bool]:
    """Test results, set-wise and optimistic: a binary COPY straight into healthkit_testresult
    (multi-insert; no staging table, no row-by-row INSERT ... ON CONFLICT; the server parses no
    text timestamps) as the rows come (`rows` may be a generator still parsing: the server
    inserts while the next rows are parsed). A key already on record (a retried record, a lab's
    correction, or one committed concurrently) or sent twice in the batch makes the COPY fail on
    the unique index inside its savepoint; the batch then goes the staging way (_first_of_each_sample,
    the rows it corrects marked superseded, then INSERT ... ON CONFLICT DO NOTHING), with the same
    outcome. Batches with no repeated sample, the usual case, pay no duplicate check at all, not
    even in Python; one with a retry or a repeat costs about twice as much.
    `before_finish(all rows)` runs once the last row is sent, while the server is still inserting
    the rows it has not reached yet (Python would only wait for it there); what it prepares is
    void if the COPY then fails.
    Returns (all rows, the resident ids of the rows inserted, one per row, whether the COPY took
    them all); `corrected` receives the resident ids of the results superseded."""
    rows = iter(rows)  # a failed COPY goes on with the rows not yet taken
    every: list[tuple] = []
    keep = every.append
    spec = SPECS[IngestBatch.Kind.TEST_RESULTS]
    try:
        with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY healthkit_testresult ({_RESULT_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(_RESULT_TYPES)
            write_row = copy.write_row
            for row in rows:
                keep(row)
                write_row((*row, received_at))
            if before_finish is not None:
                before_finish(every)
    except UniqueViolation:
        every.extend(rows)
        fresh, later = _first_of_each_sample(every)
        inserted = _copy_insert(spec, fresh, received_at, corrected=corrected)
        if later:
            inserted += _copy_insert(spec, later, received_at, corrected=corrected)
        return every, inserted, False
    return every, [row[0] for row in every], True


def _first_of_each_sample(rows: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """(the first row of each (lab, sample id, resident), in order; the rows that correct one of
    those: a later row of the key with another result, the last one of the key wins). Repeats of
    the first row with the same result are dropped (duplicates, as ON CONFLICT would keep the
    first); a sample sent twice in one batch with different results: the one resulted later
    corrects the earlier, whichever came first in the batch (for the same resulted_at, the later
    record; a second, small staging round)."""
    fresh: list[tuple] = []
    seen: dict[tuple, str] = {}  # (lab, sample id, resident) -> result of the first row
    later: dict[tuple, tuple] = {}  # the batch's own corrections of its earlier rows, last wins
    for row in sorted(rows, key=lambda row: row[4]):  # by resulted_at; stable, so ties keep batch order
        key = (row[1], row[2], row[0])
        first = seen.get(key)
        if first is None:
            seen[key] = row[5]
            fresh.append(row)
        elif first != row[5] or key in later:
            later[key] = row
    return fresh, list(later.values())


def parse_batch_id(data: dict) -> str | None:
    """The optional client `batch_id` of a bulk request: text of at most 80 characters."""
    try:
        if data.get("batch_id") == "":  # a key that names nothing: the client meant one, and would get no replay
            raise inputs.InputError(_("This field may not be blank."))
        return inputs.text(data.get("batch_id"), max_length=80, required=False) or None
    except inputs.InputError as exc:
        raise ApplicationError(_("`batch_id` is null or a string of 1 to 80 characters."),
                               extra={"field": "batch_id", "error": exc.message}) from None


def _without_key_conflicts(spec: Spec, rows: list[tuple], indexes: list[int], result: IngestResult) -> list[tuple]:
    """The rows whose key is not already another resident's. A client `record_id` reused for
    another resident (on record, or earlier in this batch) is reported on that record as a
    conflict instead of being counted as a duplicate (ON CONFLICT would swallow it). Keys made
    from a record's content include its resident: they never conflict. One indexed query."""
    with connection.cursor() as cursor:
        # Table names come from SPECS (constants), never from the request.
        cursor.execute(f"SELECT record_key, resident_id FROM {spec.table} WHERE record_key = ANY(%s)",  # noqa: S608
                       [[row[-1] for row in rows]])
        owner: dict[str, int] = dict(cursor.fetchall())
    kept = []
    for row, index in zip(rows, indexes, strict=True):
        if owner.setdefault(row[-1], row[0]) != row[0]:
            result.rejected.append({"index": index, "errors": {"record_id": _(
                "Conflict: this record id is already used for another resident.")}})
            continue
        kept.append(row)
    return kept


def _affected_by_local_cases(rows: list[tuple]) -> list[int]:
    """Residents who stayed in those counties recently enough for rule 1 to matter."""
    from healthkit.models import Stay

    earliest = min(r[1] for r in rows) - dt.timedelta(days=30)
    counties = sorted({r[0] for r in rows})
    return list(
        Stay.objects.filter(county__in=counties)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=earliest))
        .values_list("resident_id", flat=True).distinct()
    )


def _hold_result_residents(on: bool) -> None:
    """Hold, for this transaction, every resident the batch is about to look up, so that the
    result rows it writes need no per-statement resident check (migration 0016's trigger, skipped
    by its WHEN while `healthkit.result_residents_held` is on, migration 0022; what it costs is
    in docs/engine.md, "Result ingest against a raw COPY").

    Called with True before the look-up: the ROW EXCLUSIVE lock on the result table, which the
    COPY takes anyway, taken earlier. A resident delete takes SHARE on the result table first
    (0016), so one that has not committed yet now waits for this transaction, then sees its
    results and refuses; one that committed before is not found by the look-up (READ COMMITTED:
    each statement sees what committed before it), and residents this batch registers are its
    own. Called with False once the batch's rows are written: any later write of results in the
    same transaction is checked again. The setting is transaction-local; a rollback (of the
    transaction or of the savepoint it was set in) restores it."""
    with connection.cursor() as cursor:
        if on:
            cursor.execute("LOCK TABLE healthkit_testresult IN ROW EXCLUSIVE MODE")
        cursor.execute("SELECT set_config('healthkit.result_residents_held', %s, true)", ["on" if on else "off"])


def _claim_batch_id(client_id: int | None, kind: str, batch_id: str, now: dt.datetime) -> int | None:
    """The new batch record's id, or None if this client already sent this batch id (its stored
    answer is replayed). One statement: a concurrent request with the same id waits for the
    first to end, then finds its row (or, if it rolled back, takes the id itself), as
    get_or_create did with a savepoint and three more round trips."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO healthkit_ingestbatch (client_id, kind, batch_id, received_at, records, accepted, "
            "duplicates, rejected, response) VALUES (%s, %s, %s, %s, 0, 0, 0, 0, '{}') "
            "ON CONFLICT ON CONSTRAINT ingest_batch_unique DO NOTHING RETURNING id",
            [client_id, kind, batch_id, now],
        )
        row = cursor.fetchone()
    return row[0] if row else None


_collector_lock = threading.Lock()
_collector_paused = {"calls": 0, "was_on": False, "since": 0.0}
# Batches overlapping in a threaded worker (a lab feed posting without pause) could keep the
# collector off for good: a batch starting when it has been off this long collects first.
COLLECTOR_PAUSE_MAX = 10.0  # seconds


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a batch runs. A batch of 10,000 results makes
    tens of thousands of tuples that live until it ends (its rows, its people), and the
    collector, started every 700 new objects, walked them about 40 times a batch and now and
    then ran a full collection of the whole process (50-150 ms) in the middle of one. Reference
    counting frees everything as before when the batch ends; what the batch leaves in cycles (an
    exception's traceback) is collected once the collector is back on. Counted across threads:
    back on when the last paused call ends, and only if it was on when the first began; while
    calls overlap, one starting after COLLECTOR_PAUSE_MAX seconds off runs a collection first,
    so cycles made meanwhile by other requests never pile up."""
    with _collector_lock:
        if _collector_paused["calls"] == 0:
            _collector_paused["was_on"] = gc.isenabled()
            _collector_paused["since"] = time.monotonic()
            gc.disable()
        elif _collector_paused["was_on"] and time.monotonic() - _collector_paused["since"] > COLLECTOR_PAUSE_MAX:
            gc.collect()
            _collector_paused["since"] = time.monotonic()
        _collector_paused["calls"] += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_paused["calls"] -= 1
            if _collector_paused["calls"] == 0 and _collector_paused["was_on"]:
                gc.enable()


def _evaluate_on_commit(resident_ids: list[int], work: engine_work.Work | None = None) -> None:
    """Work rows in this transaction, tasks on commit (healthkit/engine_work.py); `work`, if
    given, is these residents' work already prepared."""
    engine_work.evaluate_later(resident_ids, work=work)


def _check_lab(client: User, records: list[Any]) -> None:
    """A lab's token writes its own lab's results only (User.lab): a result, or a correction that
    supersedes one, under another lab's name is refused whole, before anything is stored or the
    batch id is taken. A client without a lab (a platform relaying many labs) names any."""
    if not client.lab:
        return
    for index, rec in enumerate(records):
        lab = rec.get("lab") if isinstance(rec, dict) else None
        if isinstance(lab, (str, int)) and not isinstance(lab, bool) and str(lab).strip() != client.lab:
            raise PermissionDenied(
                _("This client sends the results of its own lab only; record %(index)d names another lab. "
                  "Nothing was stored.") % {"index": index})


@collector_paused()
def ingest(*, kind: str, records: list[Any], client: User | None = None, batch_id: str | None = None,
           evaluate: bool = True, resident: Resident | None = None) -> IngestResult:
    """Store a batch of signals of one kind. Idempotent per batch id and per record; bad records
    are reported by index and skipped. Raises ApplicationError for a malformed batch (not a list,
    more than MAX_RECORDS records). Re-evaluation of affected residents is enqueued on commit.

    `resident` (the simulator): every record is about this resident; no `id_number` needed."""
    spec = SPECS.get(kind)
    if spec is None:
        raise ApplicationError(_("Unknown signal kind."), extra={"kind": kind})
    if not isinstance(records, list):
        raise ApplicationError(_("`records` must be a list."))
    if len(records) > MAX_RECORDS:
        raise ApplicationError(
            _("At most %(n)d records per request; split the batch.") % {"n": MAX_RECORDS},
            extra={"max_records": MAX_RECORDS, "received": len(records)},
        )
    if kind == IngestBatch.Kind.TEST_RESULTS and client is not None:
        _check_lab(client, records)
    refresh_year_window()
    now = clock.now()
    client_id = client.pk if client is not None else None
    result = IngestResult(kind=kind, batch_id=batch_id, received=len(records))
    # Streaming needs the look-ups' connection to see what this one sees: only in a transaction
    # of the ingest's own (no earlier uncommitted write of the caller's it could miss).
    stream = (kind == IngestBatch.Kind.TEST_RESULTS and resident is None and len(records) > STREAM_MIN
              and not connection.in_atomic_block)
    with transaction.atomic():
        if batch_id:
            batch_pk = _claim_batch_id(client_id, kind, batch_id, now)
            if batch_pk is None:
                stored = IngestBatch.objects.values_list("response", flat=True).get(
                    client=client, kind=kind, batch_id=batch_id)
                return IngestResult(kind=kind, batch_id=batch_id, received=stored.get("received", 0),
                                    accepted=stored.get("accepted", 0),
                                    duplicates=stored.get("duplicates", 0),
                                    updated=stored.get("updated", 0), corrected=stored.get("corrected", 0),
                                    rejected=stored.get("rejected", []), replayed=True)

        # Two passes. 1: each record's resident (ID number checked, keyed hash), looked up on the
        # server a chunk at a time while the next chunk is hashed; unknown residents with a name
        # registered. 2: the other fields, each good row handed to the writer as it is parsed
        # (test results stream into a COPY: the server inserts while Python parses). A record's
        # first error is the same as in one pass: the record, then the ID number, then the fields,
        # then "no such resident". A large batch of results in a transaction of its own streams:
        # both passes a chunk at a time, the look-ups on a second connection while the COPY runs
        # on this one (_streamed_rows).
        keys: list[str | None] = [None] * len(records)  # resident hash per record
        held = False  # this batch's result rows skip the per-statement resident check
        residents: dict[str, int] = {}
        skip: set[int] = set()  # records rejected in pass 1
        created: set[int] = set()  # residents registered by this batch
        people: dict[str, tuple[str, str]] = {}  # id hash -> (normalised ID number, name or '')
        new_hashes: list[str] = []  # people's keys in the order first seen
        first_pass: Callable[[int, Any], None] | None = None
        if spec.has_resident and resident is not None:
            keys = [resident.id_hash] * len(records)
            residents[resident.id_hash] = resident.pk
        elif spec.has_resident:
            held = kind == IngestBatch.Kind.TEST_RESULTS
            if held:
                _hold_result_residents(True)
            first_pass = _resident_pass(keys, people, new_hashes, result, skip)
            if not stream:
                lookup, sent = _ResidentLookup(), 0
                try:
                    for index, rec in enumerate(records):
                        if index % LOOKUP_CHUNK == 0 and len(new_hashes) > sent:
                            lookup.send(new_hashes[sent:])
                            sent = len(new_hashes)
                        first_pass(index, rec)
                    lookup.send(new_hashes[sent:])
                finally:
                    found = lookup.collect()  # never leave a query in flight, whatever happened
                residents = _resolve_residents(people, found, created) if people else {}

        row_index: list[int] = []  # the record index of each good row, in order

        fast_parse = test_result_parser(now) if kind == IngestBatch.Kind.TEST_RESULTS else None
        since_birth = spec.since_birth if spec.has_resident else None
        # the simulator's resident: their own birth date (one decryption a batch)
        own_birth = f"{resident.birth_date() or dt.date(1890, 1, 1):%Y%m%d}" if since_birth and resident else ""
        window_opens = f"{_YEARS[0]:04d}"

        def parsed(index: int, rec: Any) -> tuple | None:
            """Pass 2 on one record: its row without the resident, or None (reported)."""
            try:
                if not isinstance(rec, dict):
                    raise RecordError({"record": _("Each record is a JSON object.")})
                row = (fast_parse(rec) if fast_parse is not None
                       else spec.parse(rec, now=now, client_id=client_id, resident_key=keys[index]))
                if since_birth is not None:
                    # born before the year window: every instant it lets in lies after the birth
                    birth = own_birth or people[keys[index]][0][6:14]  # YYYYMMDD
                    if birth[:4] >= window_opens and row[since_birth[0]] < birth_start(birth):
                        raise before_birth_error(since_birth[1])
                return row
            except RecordError as exc:
                result.rejected.append({"index": index, "errors": exc.errors})
            except KeyError as exc:
                result.rejected.append({"index": index, "errors": {exc.args[0]: _("This field is required.")}})
            except ValueError as exc:
                result.rejected.append({"index": index, "errors": {"record": str(exc)}})
            return None

        def with_resident(index: int, row: tuple, known: dict[str, int]) -> tuple | None:
            resident_id = known.get(keys[index])
            if resident_id is None:
                result.rejected.append({"index": index, "errors": {"id_number": _(
                    "No resident is registered with this ID number; send `name` to register them.")}})
                return None
            row_index.append(index)
            return (resident_id, *row)

        def good_rows() -> Iterator[tuple]:
            for index, rec in enumerate(records):
                if index in skip:
                    continue
                row = parsed(index, rec)
                if row is None:
                    continue
                if not spec.has_resident:
                    row_index.append(index)
                    yield row
                    continue
                row = with_resident(index, row, residents)
                if row is not None:
                    yield row

        ready: list[engine_work.Work] = []  # the evaluation work of every row, if one COPY took them all
        changed: list[int] = []  # residents whose record was sent again with newer facts
        corrected: list[int] = []  # residents whose lab corrected a result (both rows kept)
        if stream:
            # Rows whose resident the second connection did not find wait for the stream's end:
            # looked up again here (a resident this transaction can see), registered if named.
            waiting: list[tuple[int, tuple]] = []

            def before_finish(every: list[tuple]) -> None:
                # Every row is sent and the server is still inserting the last ones: the
                # evaluation work is built meanwhile, not after the COPY (docs/engine.md).
                if evaluate and not waiting:
                    ready.append(engine_work.prepare(row[0] for row in every))

            rows, inserted, copied = _insert_test_results(
                _streamed_rows(records, _result_chunk_pass(records, keys, people, new_hashes, first_pass, now),
                               parsed, skip, new_hashes, keys, waiting), now,
                corrected, before_finish)
            if not copied:
                ready.clear()
            if waiting:
                residents = _resolve_residents({keys[i]: people[keys[i]] for i, _row in waiting}, None, created)
                late = [full for index, row in waiting if (full := with_resident(index, row, residents)) is not None]
                more, inserted_late, _copied = _insert_test_results(late, now, corrected)
                rows, inserted = rows + more, inserted + inserted_late
            _hold_result_residents(False)
        elif kind == IngestBatch.Kind.TEST_RESULTS:
            rows, inserted, _copied = _insert_test_results(good_rows(), now, corrected)
            if held:
                _hold_result_residents(False)
        else:
            rows = list(good_rows())
            if spec.has_resident and rows:
                rows = _without_key_conflicts(spec, rows, row_index, result)
            inserted = _copy_insert(spec, rows, now, changed) if rows else []
        result.updated = len(changed)
        if created:
            _forget_unused_residents(created, (row[0] for row in rows))
        result.rejected.sort(key=lambda r: r["index"])
        result.corrected = len(corrected)
        result.accepted = len(inserted) - result.corrected
        result.duplicates = len(rows) - len(inserted) - result.updated
        if kind == IngestBatch.Kind.LOCAL_CASES:
            result.resident_ids = _affected_by_local_cases(rows) if inserted else []
        elif ready:  # every row inserted, none changed: the rows' residents, prepared
            result.resident_ids = ready[0].resident_ids
        else:
            result.resident_ids = sorted(set(inserted) | set(changed))

        if batch_id:
            IngestBatch.objects.filter(pk=batch_pk).update(
                records=result.received, accepted=result.accepted, duplicates=result.duplicates,
                rejected=len(result.rejected), response=result.as_response(),
            )
        if evaluate and result.resident_ids:
            _evaluate_on_commit(result.resident_ids, ready[0] if ready else None)
    return result
