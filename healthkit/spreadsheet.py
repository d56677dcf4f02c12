"""Cells for files staff open in a spreadsheet program (CSV and XLSX exports).

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
WPS and LibreOffice as a formula, and part of every export is typed by the public (a filer's
name, an address). Such a cell is written with a leading apostrophe, the spreadsheet's own
"this is text" mark (OWASP's advice for CSV injection), so a hostile record shows as the text it
is and never runs or links anywhere. Numbers stay numbers. Every CSV the product streams goes
through `csv_writer`; the XLSX writer turns formula and link detection off instead.
"""

import csv
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# Workbook options: XlsxWriter otherwise writes "=..." as a formula and "http..." as a link.
XLSX_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}


def text_cell(value: object) -> object:
    """The value as a spreadsheet reads it literally (strings defused, everything else as is)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
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
