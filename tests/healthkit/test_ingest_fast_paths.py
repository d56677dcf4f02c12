"""The ingest's fast paths for the usual test result and ID number give exactly what the field
by field checks give: the same row, or the same error for the same field."""

import datetime as dt
import random

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from communities import pii
from healthkit import ingest

NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
GOOD = {"id_number": "110101195001010011", "lab": "lab-01", "sample_id": "S-1",
        "sampled_at": "2026-11-29T08:00:00+08:00", "resulted_at": "2026-11-29T14:00:00+08:00",
        "result": "negative", "from_other_province": False}
VARIANTS = [
    {}, {"from_other_province": True}, {"from_other_province": 1}, {"from_other_province": None},
    {"lab": " lab-01 "}, {"lab": "   "}, {"lab": ""}, {"lab": "x" * 65}, {"lab": "la\x00b"}, {"lab": 7},
    {"sample_id": "s\u0085"}, {"sample_id": None}, {"result": "Positive"}, {"result": ["negative"]},
    {"sampled_at": "2026-11-29T08:00:00"}, {"sampled_at": "2026-11-29"}, {"sampled_at": "2026-11-29T08:00:00Z"},
    {"sampled_at": "2026-11-29T08:00:00+16:00"}, {"sampled_at": "2026-11-29T08:00:00-15:59"},
    {"sampled_at": "2018-11-29T08:00:00+08:00"}, {"sampled_at": "nonsense"}, {"sampled_at": 20261129},
    {"resulted_at": "2026-11-29T08:00:00+08:00"}, {"resulted_at": "2026-11-29T07:59:59+08:00"},
    {"resulted_at": "2026-11-30T12:10:00+00:00"}, {"resulted_at": "2026-11-30T12:10:01+00:00"},
    {"resulted_at": "2126-11-30T12:00:00+00:00"},
]


def _outcome(parse, rec):
    try:
        return parse(rec)
    except ingest.RecordError as exc:
        return exc.errors


@pytest.mark.parametrize("change", VARIANTS + [{"drop": name} for name in GOOD])
def test_result_parser_matches_the_field_checks(change):
    rec = {**GOOD, **{k: v for k, v in change.items() if k != "drop"}}
    rec.pop(change.get("drop"), None)
    ingest.refresh_year_window()
    fast = _outcome(ingest.test_result_parser(NOW), rec)
    assert fast == _outcome(lambda r: ingest._parse_test_result(r, now=NOW, client_id=None), rec)


def _slow_id(raw):
    try:
        number = pii.validate_id_number(raw)
    except ValidationError as exc:
        return exc.messages
    return number, pii.id_hash(number)


def test_id_fast_path_matches_the_validator():
    rng = random.Random(11643)
    key, today = settings.PII_HASH_KEY.encode(), f"{dt.date.today():%Y%m%d}"
    raws = ["110101195001010011", " 110101195001010011", "11010119500101001x", "11010119500101001X",
            "110101 195001010011", "１１０１０１195001010011", "110101189001010010", "110101299901010010"]
    for _ in range(300):
        first17 = f"1101011{rng.randrange(9, 10)}{rng.randrange(50, 99)}{rng.randrange(1, 13):02d}" \
                  f"{rng.randrange(1, 32):02d}{rng.randrange(1000):03d}"
        raws += [first17 + pii.id_check_digit(first17), first17 + rng.choice("0123456789X")]
    for raw in raws:
        try:
            fast = ingest._id_number_and_hash(raw, key, today)
        except ValidationError as exc:
            fast = exc.messages
        assert fast == _slow_id(raw), raw


def _record_outcomes(records, *, fused):
    """What the two passes make of a batch of results: each record's keyed hash, the people
    noted, the records reported in pass 1 and each other record's row or field errors; by the
    streamed path's fused pass (ingest._result_chunk_pass) or by the field-by-field passes."""
    ingest.refresh_year_window()
    keys, people, new_hashes, skip = [None] * len(records), {}, [], set()
    result = ingest.IngestResult(kind="test_results", batch_id=None, received=len(records))
    first_pass = ingest._resident_pass(keys, people, new_hashes, result, skip)
    if fused:
        checked = ingest._result_chunk_pass(records, keys, people, new_hashes, first_pass, NOW)(range(len(records)))
    else:
        for index, rec in enumerate(records):
            first_pass(index, rec)
        checked = [None] * len(records)
    rows = [row if row is not None else None if index in skip else
            _outcome(lambda r: ingest._parse_test_result(r, now=NOW, client_id=None), records[index])
            for index, row in enumerate(checked)]
    return {"keys": keys, "people": people, "new": new_hashes, "rejected": result.rejected, "rows": rows,
            "fast": [row is not None for row in checked]}


def test_the_fused_pass_gives_what_the_two_passes_give():
    # given a batch with the usual record, each field changed in every way above, ID numbers
    # valid, invalid or not in normal form, names, repeats and things that are not records
    number = "11010119500101001" + pii.id_check_digit("11010119500101001")
    x_number = next(n for n in (f"11010119800202{k:03d}" for k in range(1000)) if pii.id_check_digit(n) == "X") + "X"
    good = {**GOOD, "id_number": number}
    records = [good]
    for change in VARIANTS + [{"drop": name} for name in GOOD]:
        rec = {**good, **{k: v for k, v in change.items() if k != "drop"}}
        rec.pop(change.get("drop"), None)
        records.append(rec)
    wrong_digit = number[:17] + str((int(number[17]) + 1) % 10) if number[17] != "X" else number[:17] + "0"
    for raw in [" " + number, number[:17] + "x" if number[17] == "X" else number + " ", wrong_digit, x_number,
                x_number[:17] + "x", "110101189001010010", "110101299901010010", "110101195002300017",
                "１１０１０１195001010011", "110101188912310014", int(number[:17]), "", None]:
        records.append({**good, "id_number": raw})
    records += [{**good, "name": "张三"}, {**good, "name": None}, {**good, "lab": "实验室"},
                {**good, "sample_id": "S-2"},
                {**good, "sampled_at": "2026-11-29T05:30:00+05:30", "resulted_at": "2026-11-29T06:00:00Z"},
                "not a record", ["a", "list"], None]
    # when the streamed path's fused pass and the two passes take it
    fused = _record_outcomes(records, fused=True)
    slow = _record_outcomes(records, fused=False)
    # then every record has the same hash, row or error, and the usual ones took the fast way
    assert {k: v for k, v in fused.items() if k != "fast"} == {k: v for k, v in slow.items() if k != "fast"}
    assert fused["fast"][0] and all(fused["fast"][-6:-3])
    assert sum(fused["fast"]) < len(records) // 2
