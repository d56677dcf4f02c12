"""The bulk endpoints decode their body with orjson; whatever orjson refuses goes through the
standard parser, so the data and every error are those of the standard parser."""

import io

import pytest
from rest_framework.exceptions import ParseError

from healthkit.inputs import RecordsJSONParser, StrictJSONParser

BODIES = [
    b'{"batch_id": "b1", "records": [{"id_number": "110105196001010017", "lab": "\\u5317\\u4eac", "n": 1.5}]}',
    b'{"records": [{"lab": "\\ud800"}]}',  # a lone surrogate inside a record: per-record error later
    b'{"records": [], "batch_id": "\\ud800"}',  # outside the records: 400
    b'{"records": [{"n": 123456789012345678901234567890}]}',  # beyond 64 bits: orjson would read a float
    b'{"records": [{"n": -9223372036854775809, "m": 9223372036854775807}]}',
    b'{"records": [{"n": 1e400}]}',
    b'{"records": [{"n": NaN}]}',  # not JSON: 400 as before
    b'\xef\xbb\xbf{"records": []}',  # a BOM
    b'{"records": [1, 2,]}',  # malformed
    b'{"records": [{"a": 1, "a": 2}]}',  # a repeated key: the last wins
    b'{"records": [{"lab": "\\u0000"}]}',  # NUL inside a record
    b'{"records": "\xff"}',  # invalid UTF-8
    b'null',
]


class _Standard(StrictJSONParser):
    per_record_key = "records"


def _outcome(parser, body: bytes):
    try:
        return ("data", parser.parse(io.BytesIO(body), "application/json", {"encoding": "utf-8"}))
    except ParseError as exc:
        return ("error", str(exc.detail)[:40])


@pytest.mark.parametrize("body", BODIES)
def test_records_parser_answers_as_the_standard_parser(body):
    fast, standard = _outcome(RecordsJSONParser(), body), _outcome(_Standard(), body)
    assert fast[0] == standard[0]
    if fast[0] == "data":
        assert fast[1] == standard[1]


def test_records_parser_keeps_the_record_shapes():
    kind, data = _outcome(RecordsJSONParser(), BODIES[0])
    assert kind == "data"
    assert data == {"batch_id": "b1", "records": [{"id_number": "110105196001010017", "lab": "北京", "n": 1.5}]}
    assert _outcome(RecordsJSONParser(), BODIES[2])[0] == "error"
