"""The one input boundary: every text, instant, code and number that enters the product (ingest,
scans, SMS receipts, Open311, REST, console forms, query strings, path parameters) is parsed here,
so no entry point can forget a check. See docs/inputs.md for the rules.

Plain functions raise `InputError` (a ValueError) with a message a person can read; ingest turns
it into a per-record, per-field error. The DRF fields (`TextField`, `InstantField`, `CodeField`),
the Django form fields (`TextFormField`, `SearchFormField`) and `StrictJSONParser` are built on
the same functions.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import json
import re
import unicodedata
from typing import Any

import orjson
from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from healthkit import clock


class InputError(ValueError):
    """One value is not acceptable; `message` says why (never echoing the value)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# NUL and the other C0 controls, DEL, the C1 controls, lone UTF-16 surrogates (legal as \ud800
# escapes in JSON, not encodable as UTF-8: PostgreSQL and the response would fail on them), and
# the non-characters U+FFFE/U+FFFF, and the bidirectional embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069: a name holding U+202E shows the text after it reversed on every
# console page and export; Chinese and English never need them), and the replacement character
# U+FFFD (what Django makes of bytes that were not UTF-8, e.g. a GBK form posted without a
# charset: stored, it is a name or an address nobody can read). Line breaks and tabs are
# allowed only in multi-line text.
# The same classes as JSON Schema (ECMA 262) pattern text, for the OpenAPI schema (healthkit.api);
# tests/test_openapi_schema.py holds them to the compiled ones.
TEXT_BAD_LINE = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffd-\uffff"
TEXT_BAD_MULTILINE = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffd-\uffff"
# What str.strip() removes (in multi-line text, line breaks and tabs too).
TEXT_WHITE_SPACE = r"\t\n\x0b\x0c\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_BAD_LINE = re.compile(f"[{TEXT_BAD_LINE}]")
_BAD_MULTILINE = re.compile(f"[{TEXT_BAD_MULTILINE}]")
# Only what cannot be stored or sent at all: NUL and lone surrogates (any JSON string anywhere).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_OFFSET_LIMIT = dt.timedelta(hours=15, minutes=59)  # PostgreSQL's timestamptz offset range
NAME_MAX = 64  # a person's name (communities.Resident.name): longer is refused, never cut


def has_bad_characters(value: str, *, multiline: bool = False) -> bool:
    return (_BAD_MULTILINE if multiline else _BAD_LINE).search(value) is not None


def drop_bad_characters(value: str) -> str:
    """For search boxes: the control characters and lone surrogates are dropped, not refused."""
    return _BAD_LINE.sub("", value)


def text(value: Any, *, max_length: int, required: bool = True, multiline: bool = False,
         allow_int: bool = False) -> str:
    """A string of printable text, stripped, at most `max_length` characters (refused, never
    cut). '' when absent and not required; `allow_int`: a JSON number is taken as its digits."""
    if value is None or value == "":
        if required:
            raise InputError(_("This field is required."))
        return ""
    if allow_int and type(value) is int:
        value = str(value)
    if not isinstance(value, str):
        raise InputError(_("Must be a string."))
    if has_bad_characters(value, multiline=multiline):
        raise InputError(_("Contains control characters or invalid Unicode."))
    value = value.strip()
    if not value and required:
        raise InputError(_("This field is required."))
    if len(value) > max_length:
        raise InputError(_("At most %(n)d characters.") % {"n": max_length})
    return value


def year_window() -> tuple[int, int]:
    """The years an instant may fall in (settings INPUT_YEAR_MIN, INPUT_YEARS_AHEAD): outside it
    a date is a typing error (0001, 9999), and arithmetic on it could overflow."""
    return (getattr(settings, "INPUT_YEAR_MIN", 2019),
            clock.today().year + getattr(settings, "INPUT_YEARS_AHEAD", 1))


def in_year_window(year: int) -> None:
    first, last = year_window()
    if not first <= year <= last:
        raise InputError(_("The year must lie between %(first)d and %(last)d.") % {"first": first, "last": last})


def validate_year_window(value: dt.date | None) -> None:
    """A form field's validator: a date or date-time (as typed, in its own zone) in the year
    window; the admin's forms use it (healthkit.admin_site.PlausibleDatesMixin)."""
    if value is None:
        return
    try:
        in_year_window(value.year)
    except InputError as exc:
        raise forms.ValidationError(exc.message, code="year") from None


def instant(value: Any, *, required: bool = True) -> dt.datetime | None:
    """An ISO 8601 date-time with a UTC offset PostgreSQL can store (at most ±15:59), in the
    plausible year window. Naive times are refused (whose clock?)."""
    if value is None or value == "":
        if required:
            raise InputError(_("This field is required."))
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        if not isinstance(value, str) or len(value) > 64 or not value.isascii():
            raise InputError(_("Must be an ISO 8601 date-time with a UTC offset."))
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise InputError(_("Must be an ISO 8601 date-time with a UTC offset.")) from None
    if parsed.tzinfo is None:
        raise InputError(_("Add the UTC offset (e.g. +08:00)."))
    offset = parsed.utcoffset()
    if offset is None or abs(offset) > _OFFSET_LIMIT:
        raise InputError(_("The UTC offset must lie within ±15:59."))
    in_year_window(parsed.year)
    return parsed


def date(value: Any, *, required: bool = True) -> dt.date | None:
    """A calendar date YYYY-MM-DD in the plausible year window."""
    if value is None or value == "":
        if required:
            raise InputError(_("This field is required."))
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        parsed = value
    else:
        if not isinstance(value, str) or len(value) != 10 or not value.isascii():
            raise InputError(_("Must be a date (YYYY-MM-DD)."))
        try:
            parsed = dt.date.fromisoformat(value)
        except ValueError:
            raise InputError(_("Must be a date (YYYY-MM-DD).")) from None
    in_year_window(parsed.year)
    return parsed


def digits(value: Any) -> str:
    """Full-width (and other Unicode) decimal digits normalised to ASCII ('１１０１０５' ->
    '110105'); anything that is not a digit is left as it is, for the caller to refuse."""
    if value.isascii():
        return value
    return "".join(str(unicodedata.decimal(ch)) if unicodedata.decimal(ch, None) is not None else ch
                   for ch in value)


# The full-width forms of ASCII ('Ｖ', '７', 'ａ') and the ideographic space, as a Chinese input
# method types them, as their ASCII characters.
_FULL_WIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}


def venue_code(value: str) -> str:
    """A venue code as the look-up reads it (scans, the risk-window form, the venue search):
    full-width letters and digits (and other Unicode decimal digits) as ASCII, stripped,
    upper-case, so 'Ｖ７ＫＱ…' typed on a Chinese input method finds the venue printed 'V7KQ…'.
    Anything else is left for the look-up to miss ("no such venue")."""
    if not value.isascii():
        value = digits(value.translate(_FULL_WIDTH))
    return value.strip().upper()


def code(value: Any, *, length: int, required: bool = True, what: str = "") -> str:
    """A numeric code of exactly `length` ASCII digits (a county, a division); full-width digits
    are normalised, any other character refused, so no code the engine cannot match is stored."""
    if isinstance(value, str) and len(value) > length * 4:  # not "at most 24 characters" for a 6-digit code
        raise InputError(what or _("Must be %(n)d digits.") % {"n": length})
    raw = text(value, max_length=length * 4, required=required, allow_int=True)
    if not raw:
        return ""
    normalised = digits(raw)
    if not (len(normalised) == length and normalised.isascii() and normalised.isdigit()):
        raise InputError(what or _("Must be %(n)d digits.") % {"n": length})
    return normalised


def integer(value: Any, *, minimum: int | None = None, maximum: int | None = None,
            required: bool = True) -> int | None:
    """A JSON integer (never a boolean, never a float); a string of ASCII digits is accepted."""
    if value is None or value == "":
        if required:
            raise InputError(_("This field is required."))
        return None
    if type(value) is str:
        normalised = digits(value.strip())
        if not (normalised.isascii() and normalised.lstrip("-").isdigit() and len(normalised) <= 18):
            raise InputError(_("Must be a whole number."))
        value = int(normalised)
    if type(value) is not int:
        raise InputError(_("Must be a whole number."))
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise InputError(_("Out of range."))
    return value


def key(value: Any) -> int:
    """A primary key from a form or query string ("12"); 0 (matches nothing) for anything else,
    so a crafted value finds nothing instead of reaching the database as text."""
    try:
        return integer(value, minimum=1, maximum=2**63 - 1, required=False) or 0
    except InputError:
        return 0


def boolean(value: Any, *, default: bool = False) -> bool:
    if value is None:
        return default
    if value is not True and value is not False:
        raise InputError(_("Must be true or false."))
    return value


def choice(value: Any, choices: tuple[str, ...] | list[str] | dict, message: str) -> str:
    """One of `choices` (strings); any other value or JSON type is refused with `message`."""
    if type(value) is not str or value not in choices:
        raise InputError(message)
    return value


def first_unstorable(data: Any, path: str = "", *, skip: str | None = None) -> str | None:
    """The path ('records.3.lab') of the first string (key or value) in parsed JSON holding a NUL
    or a lone surrogate, or None. `skip`: a top-level key whose content is checked further in."""
    stack: list[tuple[str, Any]] = [(path, data)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                return where or "body"
        elif isinstance(item, dict):
            for key, value in item.items():
                if isinstance(key, str) and _UNSTORABLE.search(key):
                    return f"{where}.<key>" if where else "<key>"
                if where == "" and key == skip:
                    continue
                stack.append((f"{where}.{key}" if where else str(key), value))
        elif isinstance(item, list):
            stack.extend((f"{where}.{i}", value) for i, value in enumerate(item))
    return None


def malformed_json_message(cause: BaseException | None) -> str:
    """Why a body is not JSON, saying where (line and column) but quoting none of it."""
    if isinstance(cause, json.JSONDecodeError):
        return _("The body is not valid JSON (line %(line)d, column %(column)d).") % {
            "line": cause.lineno, "column": cause.colno}
    if isinstance(cause, UnicodeError):
        return _("The body is not text in the declared character set (UTF-8 unless Content-Type names another).")
    return _("The body is not valid JSON.")


class DuplicateKey(Exception):
    """A JSON object names one key twice (raised while parsing; `key` is that key)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: the object as a dict, or DuplicateKey if a key comes twice."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return data


def _strict_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity, -Infinity (DRF's strict JSON)


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\[\]-]{0,63}")


def duplicate_key_error(key: str) -> ParseError:
    """The 400 for a body naming a key twice in one object: a proxy or log reading the first value
    and the product the last would disagree on what was sent. Names the key if it is a plain field
    name (never quoting other text)."""
    return ParseError({"message": _("The JSON body names the same key twice in one object; send each key once."),
                       "extra": {"key": key} if _FIELD_NAME.fullmatch(key) else {}})


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, then one walk over the result: a NUL or a lone surrogate anywhere is a
    400 naming where (e.g. `receipts.3.status`), before any view, serializer, database or error
    page (Django's debug page cannot encode a lone surrogate) sees it. A key named twice in one
    object is a 400 too (json's default keeps the last silently). Views that report bad records
    one by one (ingest) name the list they check themselves in `per_record_key`."""

    per_record_key: str | None = None

    def parse(self, stream, media_type=None, parser_context=None):
        # DRF's message is English and quotes Python ("'utf-8' codec can't decode byte 0xff",
        # "use sys.set_int_max_str_digits()"), and a body nested deeper than the recursion limit
        # escaped it as a 500: every malformed body is a 400 {"detail"} in the reader's language.
        # DRF's JSONParser.parse, with the hook that refuses a repeated key.
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            data = json.load(codecs.getreader(encoding)(stream), object_pairs_hook=_unique_keys,
                             parse_constant=_strict_constant)
        except RecursionError:
            raise ParseError(_("The JSON body is nested too deeply.")) from None
        except DuplicateKey as exc:
            raise duplicate_key_error(exc.key) from None
        except ValueError as exc:
            raise ParseError(malformed_json_message(exc)) from None
        return self.checked(data)

    def checked(self, data: Any) -> Any:
        where = first_unstorable(data, skip=self.per_record_key)
        if where is not None:
            # The shape of every other 400 of the API (healthkit.api: ApplicationError).
            raise ParseError({"message": _("Text may not contain NUL characters or lone UTF-16 surrogates."),
                              "extra": {"field": where}})
        return data


_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_DIGIT_RUN = b"0" * 19  # 2**63 has 19 digits


class RecordsJSONParser(StrictJSONParser):
    """For the bulk endpoints: the `records` list is checked record by record (bad records are
    reported by index and field, the good ones kept). Bodies of up to 10,000 records are decoded
    by orjson (about 3x faster than the standard library on a 2.3 MB body); anything orjson
    refuses (lone surrogate escapes, a BOM, malformed JSON) goes through the standard parser, and
    so does a body with a run of 19 or more digits (orjson reads an integer beyond 64 bits as a
    float; Python keeps it exact): the result and every error stay exactly what they were."""

    per_record_key = "records"

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        if stream is None or encoding.lower().replace("-", "").replace("_", "") != "utf8":
            return super().parse(stream, media_type, parser_context)
        body = stream.read()
        if _LONG_DIGIT_RUN in body.translate(_DIGITS_AS_ZERO):  # ~3 ms on 2.3 MB; a regex takes 200
            return super().parse(io.BytesIO(body), media_type, parser_context)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        if _may_repeat_a_key(body, data):  # the standard parser finds and names it (or clears it)
            return super().parse(io.BytesIO(body), media_type, parser_context)
        return self.checked(data)


_ESCAPED_COLONS = (b"\\u003a", b"\\u003A")


def _may_repeat_a_key(body: bytes, data: Any) -> bool:
    """Whether `body`, read by orjson as `data`, may name a key twice in one object (orjson keeps
    the last silently). Outside strings JSON has a colon only after each key, so the body has one
    colon per key as sent plus those inside its strings; orjson's own encoding of `data` has one
    per key kept plus the same string colons, unless the body wrote one as an escape. Counting
    both in C takes ~1.5 ms on a 2.2 MB body of 10,000 results (orjson reads it in ~6 ms)."""
    # (a backslash first: one byte is found at memory speed; most batches have none)
    if b"\\" in body and any(escape in body for escape in _ESCAPED_COLONS):
        return True  # string colons the count cannot see: let the standard parser decide
    return body.count(b":") != orjson.dumps(data).count(b":")


# --- DRF fields ---------------------------------------------------------------------------------

class TextField(serializers.CharField):
    """CharField refusing control characters and lone surrogates; over-long text refused."""

    def __init__(self, *, multiline: bool = False, **kwargs):
        self.multiline = multiline
        kwargs.setdefault("trim_whitespace", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) and not (type(data) is int and not isinstance(data, bool)):
            self.fail("invalid")
        if isinstance(data, str) and has_bad_characters(data, multiline=self.multiline):
            raise serializers.ValidationError(_("Contains control characters or invalid Unicode."))
        return super().to_internal_value(data)


class InstantField(serializers.DateTimeField):
    """An ISO 8601 date-time with offset (±15:59 at most) in the plausible year window."""

    def to_internal_value(self, value):
        try:
            return instant(value)
        except InputError as exc:
            raise serializers.ValidationError(exc.message) from None


class DateField(serializers.DateField):
    """A date YYYY-MM-DD in the plausible year window."""

    def to_internal_value(self, value):
        try:
            return date(value)
        except InputError as exc:
            raise serializers.ValidationError(exc.message) from None


class CodeField(serializers.CharField):
    """A numeric code of `length` digits (full-width digits normalised)."""

    def __init__(self, *, length: int, **kwargs):
        self.length = length
        kwargs.setdefault("max_length", length * 4)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return code(data, length=self.length)
        except InputError as exc:
            raise serializers.ValidationError(exc.message) from None


# --- Django form fields -------------------------------------------------------------------------

class TextFormField(forms.CharField):
    """forms.CharField refusing control characters and lone surrogates (Django refuses only NUL)."""

    def __init__(self, *, multiline: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.multiline = multiline or isinstance(self.widget, forms.Textarea)

    def to_python(self, value):
        if isinstance(value, str) and has_bad_characters(value, multiline=self.multiline):
            raise forms.ValidationError(_("Contains control characters or invalid Unicode."), code="bad_characters")
        return super().to_python(value)


class DateFormField(forms.DateField):
    """forms.DateField in the plausible year window (a date of year 1 or 9999 is a typing error,
    and a day added to it would overflow)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None:
            try:
                in_year_window(value.year)
            except InputError as exc:
                raise forms.ValidationError(exc.message, code="year") from None
        return value


class DateTimeFormField(forms.DateTimeField):
    """forms.DateTimeField in the plausible year window, with a UTC offset PostgreSQL can store
    (±15:59): a form's instant of year 1 or 9999 would overflow when converted to UTC or moved by
    an hour, and one of year 10000 cannot be stored at all."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None:
            offset = value.utcoffset()
            try:
                if offset is not None and abs(offset) > _OFFSET_LIMIT:
                    raise InputError(_("The UTC offset must lie within ±15:59."))
                in_year_window(value.year)
            except InputError as exc:
                raise forms.ValidationError(exc.message, code="year") from None
        return value


class SearchFormField(forms.CharField):
    """A search box: control characters and lone surrogates are dropped, not an error."""

    def to_python(self, value):
        if isinstance(value, str):
            value = drop_bad_characters(value)
        return super().to_python(value)


def clean_query_string(value: str) -> str:
    """A query string value as every view reads it (see InputBoundaryMiddleware)."""
    return drop_bad_characters(value)


class InputBoundaryMiddleware:
    """Query strings and paths, for every view at once: a path holding a control character or
    invalid Unicode answers 400 (no path parameter, such as an appeal reference, reaches a view or
    the database with one); query-string values (search boxes, filters, cursors) have control
    characters dropped, as a search box should."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.http import HttpResponseBadRequest

        if has_bad_characters(request.path_info) or has_bad_characters(request.path):
            from django.utils import translation

            # before LocaleMiddleware: the reader's language from Accept-Language
            with translation.override(translation.get_language_from_request(request)):
                message = _("The address holds characters that are not allowed.")
            if request.path_info.startswith("/api/"):  # the REST API's error shape
                from healthkit.views_errors import api_error

                return api_error(message, 400, "bad_characters")
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        query = request.GET
        if any(has_bad_characters(k) or any(has_bad_characters(v) for v in query.getlist(k)) for k in query):
            cleaned = query.copy()
            for key in list(cleaned):
                values = [drop_bad_characters(v) for v in cleaned.getlist(key)]
                del cleaned[key]
                cleaned.setlist(drop_bad_characters(key), values)
            cleaned._mutable = False
            request.GET = cleaned
        return self.get_response(request)
