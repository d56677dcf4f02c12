"""CSV and XLSX writers for exports. Both take an iterator of rows and never hold the whole
export: CSV is streamed as it is produced; XLSX is written by XlsxWriter in constant-memory mode
(one row in memory at a time) to a temporary file, which is then streamed to the client."""

import datetime as dt
import tempfile
from collections.abc import Iterable, Iterator

import xlsxwriter
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone

from healthkit.spreadsheet import XLSX_OPTIONS, csv_stream_response, csv_writer, text_cell

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def cell(value: object) -> object:
    """Times in the city's zone, as text both formats show the same way."""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None:
        return ""
    return value if isinstance(value, int | float) else text_cell(str(value))


def csv_response(filename: str, sheets: Iterable[tuple[str, list[str], Iterable[list]]]) -> StreamingHttpResponse:
    """One CSV; several sheets follow each other, each under a line with its title."""
    writer = csv_writer()
    sheets = list(sheets)

    def rows() -> Iterator[str]:
        yield "\ufeff"  # Excel opens UTF-8 (Chinese) correctly with a BOM
        for index, (title, header, body) in enumerate(sheets):
            if index:
                yield writer.writerow([])
            if title and len(sheets) > 1:
                yield writer.writerow([title])
            yield writer.writerow(header)
            for row in body:
                yield writer.writerow([cell(v) for v in row])

    return csv_stream_response(rows(), filename=f"{filename}.csv")


def xlsx_response(filename: str, sheets: Iterable[tuple[str, list[str], Iterable[list]]]) -> FileResponse:
    """One worksheet per sheet (title cut to Excel's 31 characters)."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it after streaming
    book = xlsxwriter.Workbook(out, {"constant_memory": True, "in_memory": False,
                                     "tmpdir": tempfile.gettempdir(), **XLSX_OPTIONS})
    bold = book.add_format({"bold": True})
    used: set[str] = set()
    for index, (title, header, body) in enumerate(sheets):
        name = "".join(ch for ch in (title or f"Sheet {index + 1}") if ch not in "[]:*?/\\")[:28] or f"S{index}"
        while name in used:
            name = f"{name[:26]}{index}"
        used.add(name)
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, header, bold)
        for r, row in enumerate(body, start=1):
            sheet.write_row(r, 0, [cell(v) for v in row])
    book.close()
    out.seek(0)
    return FileResponse(out, as_attachment=True, filename=f"{filename}.xlsx", content_type=XLSX_TYPE)


def response(fmt: str, filename: str, sheets: list[tuple[str, list[str], Iterable[list]]]):
    return xlsx_response(filename, sheets) if fmt == "xlsx" else csv_response(filename, sheets)
