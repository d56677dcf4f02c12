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
