"""Cells for files staff open in a spreadsheet program (CSV and XLSX exports).

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
WPS and LibreOffice as a formula, and part of every export is typed by the public (a filer's
name, an address). Such a cell is written with a leading apostrophe, the spreadsheet's own
"this is text" mark (OWASP's advice for CSV injection), so a hostile record shows as the text it
is and never runs or links anywhere. Numbers stay numbers. Every CSV the product streams goes
through `csv_writer` and `csv_stream_response`; the XLSX writer turns formula and link detection
off instead.
"""

import csv
import logging
from collections.abc import Iterable, Iterator

import psycopg
from django.db import DatabaseError
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n",
                  # full-width, as a Chinese input method types them: a spreadsheet may take "＝" for "="
                  "\uff1d", "\uff0b", "\uff0d", "\uff20")
# Spaces (and the ideographic space) before a formula: some programs skip them and evaluate the rest.
_LEADING_SPACES = " \u3000\u00a0"
# Workbook options: XlsxWriter otherwise writes "=..." as a formula and "http..." as a link.
XLSX_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}


def text_cell(value: object) -> object:
    """The value as a spreadsheet reads it literally (strings defused, everything else as is)."""
    if isinstance(value, str) and value.lstrip(_LEADING_SPACES).startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


class SafeCsvWriter:
    """`csv.writer` for streaming responses: `writerow` returns the line, every cell defused."""

    def __init__(self) -> None:
        self._writer = csv.writer(_Echo())

    def writerow(self, row: Iterable[object]) -> str:
        return self._writer.writerow([text_cell(v) for v in row])


def csv_writer() -> SafeCsvWriter:
    return SafeCsvWriter()


class ChoiceLabels:
    """A model's choice labels in the active language, each field's table made once per export.

    `labels(obj, "status")` is `obj.get_status_display()` without its cost: Django rebuilds a
    dict of every choice on each call, hashing each lazy label through gettext, which was 40 % of
    the time of a 300,000-row appeal export (docs/scale.md, *Every page at a million rows*)."""

    def __init__(self, model) -> None:
        self._model = model
        self._tables: dict[str, tuple[str, dict]] = {}

    def __call__(self, obj, field_name: str) -> object:
        table = self._tables.get(field_name)
        if table is None:
            field = self._model._meta.get_field(field_name)
            table = self._tables[field_name] = (field.attname, {value: str(label) for value, label in field.flatchoices})
        attname, labels = table
        value = getattr(obj, attname)
        return labels.get(value, value)


# What may stop a streamed export half-way: the database (connection lost, statement timeout)
# or the disk of a temporary file.
STREAM_FAILURES = (DatabaseError, psycopg.Error, OSError)


def incomplete_export_line() -> str:
    return SafeCsvWriter().writerow([_("THIS EXPORT IS INCOMPLETE: it stopped because of an error on the "
                                       "server. Download it again.")])


def csv_stream_response(rows: Iterable[str], *, filename: str) -> StreamingHttpResponse:
    """A streamed CSV download of `rows` (lines from csv_writer). The answer's 200 went out with
    the first line, so a failure half-way (the database connection killed, a statement timeout)
    can no longer change it: the file then ends with a line saying it is incomplete, and the
    stream is cut (the error raised again: the answer ends without its last chunk, which a
    browser reports as a failed download). Before, a cut export could be saved as if whole."""

    def guarded() -> Iterator[str]:
        try:
            yield from rows
        except STREAM_FAILURES as exc:
            logger.error("export %s stopped half-way: %s", filename, type(exc).__name__)
            yield "\r\n" + incomplete_export_line()
            raise

    response = StreamingHttpResponse(guarded(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
