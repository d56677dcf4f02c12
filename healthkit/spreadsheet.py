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
