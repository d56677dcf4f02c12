"""How a request body is framed and coded, for every view at once (docs/inputs.md).

- `Content-Encoding: gzip` (or `x-gzip`) and `deflate` bodies are decoded here, so a lab may
  send a 10,000-record batch compressed; the decoded body is what every parser reads. Its size is
  bounded while it is decoded (DATA_UPLOAD_MAX_MEMORY_SIZE, the limit of a plain body): a zip
  bomb is a 413 after at most that many bytes, never a process out of memory. Data that does not
  decode is a 400; any other coding is a 415 naming the ones understood (`Accept-Encoding`).
  Before, a compressed body reached the JSON parser as bytes and was refused as "not text in the
  declared character set", and a body labelled with an unknown coding was read as if plain.
- A chunked body without `Content-Length` is read (bounded the same way) when the server
  delivers it whole (gunicorn: `wsgi.input_terminated`), else refused with 411. Before, Django
  read such a body as empty, so an ingest batch was refused as "send a JSON object with a
  records list" and a form as missing every field.
"""

from __future__ import annotations

import io
import zlib

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

ACCEPTED_CODINGS = "gzip, deflate"
_CHUNK = 64 * 1024


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _read_bounded(stream, limit: int) -> bytes:
    """At most limit + 1 bytes of `stream` (one more than allowed tells "too large")."""
    parts, size = [], 0
    while size <= limit:
        part = stream.read(min(_CHUNK, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _decode(data: bytes, coding: str, limit: int) -> bytes:
    """One content coding undone, producing at most `limit` bytes (else 413)."""
    if coding == "identity":
        return data
    if coding in ("gzip", "x-gzip"):
        decoders = [zlib.MAX_WBITS | 16]
    else:  # deflate: the zlib format (RFC 9110), or the raw deflate some clients send
        decoders = [zlib.MAX_WBITS, -zlib.MAX_WBITS]
    for wbits in decoders:
        decoder = zlib.decompressobj(wbits)
        try:
            out = decoder.decompress(data, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit:
            from healthkit.views_errors import body_too_large_message

            raise _Refused(413, body_too_large_message())
        if decoder.eof and not decoder.unused_data:
            return out
    raise _Refused(400, _("The body is not valid %(coding)s data (Content-Encoding).") % {"coding": coding})


def _codings(value: str) -> list[str]:
    return [c.strip().lower() for c in value.split(",") if c.strip()]


class RequestBodyMiddleware:
    """Undo `Content-Encoding` and read chunked bodies before any view or parser sees them;
    refusals in the API's `{"detail"}` shape under /api/, as plain text elsewhere."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get("CONTENT_LENGTH")
        codings = _codings(meta.get("HTTP_CONTENT_ENCODING", ""))
        if not chunked and not codings:
            return self.get_response(request)
        try:
            self._prepare(request, chunked, codings)
        except _Refused as refused:
            return self._refusal(request, refused)
        return self.get_response(request)

    def _prepare(self, request: HttpRequest, chunked: bool, codings: list[str]) -> None:
        unknown = [c for c in codings if c not in ("gzip", "x-gzip", "deflate", "identity")]
        if unknown:
            raise _Refused(415, _("The body's Content-Encoding %(coding)s is not supported: send it as it is, or "
                                  "with gzip or deflate.") % {"coding": unknown[0]})
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if chunked:
            if not request.META.get("wsgi.input_terminated"):
                raise _Refused(411, _("Send the body with a Content-Length header (a chunked body cannot be "
                                      "read here)."))
            data = _read_bounded(request.META["wsgi.input"], limit)
        else:
            data = _read_bounded(request, limit)  # Content-Length bounds it; the limit too
        if len(data) > limit:
            from healthkit.views_errors import body_too_large_message

            raise _Refused(413, body_too_large_message())
        for coding in reversed(codings):  # listed in the order they were applied
            data = _decode(data, coding, limit)
        request._stream = io.BytesIO(data)
        request._read_started = False
        request.META["CONTENT_LENGTH"] = str(len(data))
        request.META.pop("HTTP_CONTENT_ENCODING", None)
        request.META.pop("HTTP_TRANSFER_ENCODING", None)
        request.__dict__.pop("headers", None)  # a cached view of META

    @staticmethod
    def _refusal(request: HttpRequest, refused: _Refused) -> HttpResponse:
        from healthkit.views_errors import api_error, is_api

        if is_api(request):
            response = api_error(refused.message, refused.status)
        else:
            response = HttpResponse(refused.message, status=refused.status, content_type="text/plain; charset=utf-8")
        if refused.status == 415:
            response["Accept-Encoding"] = ACCEPTED_CODINGS
        return response
