"""Screenshot checks and re-encoding with Pillow.

An upload is accepted only if it really is a PNG, JPEG or WebP within the byte and pixel limits,
decodes completely (truncated files fail), and is not a decompression bomb. What is stored is a
fresh encoding of the pixels: EXIF (including GPS), text chunks and ICC profiles are dropped.
"""

import hashlib
import io
import logging
import re
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from healthkit.errors import ApplicationError

ALLOWED_FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"), "WEBP": ("webp", "image/webp")}
# The only parsers that see an upload. Pillow's JPEG parser names a JPEG with extra frames
# (a phone's portrait-mode photo) "MPO"; its first frame is stored as a JPEG.
OPEN_FORMATS = ("PNG", "JPEG", "WEBP")
OPENED_FORMATS = (*OPEN_FORMATS, "MPO")
# Modes each stored format keeps as they are (others are converted to RGB or RGBA).
KEPT_MODES = {"PNG": ("RGB", "RGBA", "L", "LA", "P", "1"), "JPEG": ("RGB", "L"), "MPO": ("RGB", "L"),
              "WEBP": ("RGB", "RGBA")}
WEBP_BYTES_PER_PIXEL = 26
THUMBNAIL_SIZE = (320, 320)
ORIENTATION_TAG = 0x0112
logger = logging.getLogger(__name__)


class EvidenceRejected(ApplicationError):
    """The file is not an image we accept; the message says why in plain words."""


class EvidenceStorageUnavailable(EvidenceRejected):
    """The private storage refused a picture (disk full, read-only, permission denied, object
    storage unreachable): nothing of it was kept, and what the resident typed is not touched."""


def storage_errors() -> tuple[type[BaseException], ...]:
    """What a storage backend raises when it cannot keep or give back a file: OSError for the
    file system (ENOSPC, EROFS, EACCES, EIO), botocore's errors for object storage when installed."""
    errors: tuple[type[BaseException], ...] = (OSError,)
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return errors
    return (*errors, BotoCoreError, ClientError)


def storage_failed_message() -> str:
    return _("Pictures cannot be stored at the moment. Nothing you entered is lost; "
             "please add the picture again in a few minutes.")


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    thumbnail: bytes
    extension: str
    content_type: str
    width: int
    height: int
    sha256: str


def _read_limited(upload) -> bytes:
    max_bytes = settings.APPEALS_EVIDENCE_MAX_BYTES
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise EvidenceRejected(_("This file is larger than %(mb)d MB; please send a smaller screenshot.")
                               % {"mb": max_bytes // (1024 * 1024)})
    upload.seek(0)
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise EvidenceRejected(_("This file is larger than %(mb)d MB; please send a smaller screenshot.")
                               % {"mb": max_bytes // (1024 * 1024)})
    if not data:
        raise EvidenceRejected(_("This file is empty."))
    return data


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Pillow reads PNG chunks and JPEG segments one by one in Python, and libjpeg runs every scan of
# a JPEG over the whole picture: 10 MB of empty chunks, segments or scans took 6-18 s. A phone's
# 10 MB PNG in 8 KB pixel chunks has ~1,300 chunks; a progressive JPEG has about 10 scans.
MAX_PARTS = 10_000
MAX_SCANS = 64
# In a scan's coded data FF is followed by 00 (a stuffed byte) or a restart marker; else a marker starts.
SCAN_END = re.compile(rb"\xff(?![\x00\xd0-\xd7])")


def _jpeg_structure(data: bytes) -> tuple[int, int]:
    """(segments, scans) of the first picture of a JPEG, counted up to just past the limits."""
    pos, parts, scans, size = 2, 0, 0, len(data)
    while pos + 4 <= size and parts <= MAX_PARTS and scans <= MAX_SCANS:
        if data[pos] != 0xFF:  # stray bytes, which Pillow steps over one at a time: count each
            found = data.find(b"\xff", pos)
            parts += (found if found != -1 else size) - pos
            pos = found if found != -1 else size
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == 0xD9:  # end of the first picture (an MPO's other frames are never decoded)
            break
        parts += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:  # a scan: its coded data runs to the next FF not followed by 00 or RSTn
            scans += 1
            found = SCAN_END.search(data, pos)
            if found is None:
                break
            pos = found.start()
    return parts, scans


def _png_chunks(data: bytes) -> int:
    """Chunks of a PNG, counted up to just past the limit."""
    pos, parts = len(PNG_SIGNATURE), 0
    while pos + 8 <= len(data) and parts <= MAX_PARTS:
        parts += 1
        if data[pos + 4:pos + 8] == b"IEND":
            break
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")
    return parts


def _structure_check(data: bytes) -> int:
    """Refuse a PNG or JPEG built of more parts than any camera or phone writes, before Pillow
    reads it; returns the JPEG's scan count (0 for other formats)."""
    scans = 0
    if data.startswith(PNG_SIGNATURE):
        parts = _png_chunks(data)
    elif data.startswith(b"\xff\xd8"):
        parts, scans = _jpeg_structure(data)
    else:
        return 0
    if parts > MAX_PARTS or scans > MAX_SCANS:
        raise EvidenceRejected(_("This picture's file is built in an unusual way we cannot check; "
                                 "please send a plain screenshot."))
    return scans


def _decode_cost(probe: Image.Image, scans: int, orientation: int) -> int:
    """Bytes that decoding and re-encoding this picture hold at their peak, from its header.

    Per pixel, measured on 40 MP pictures (bench/uploads.py --worst prints both): the decoded
    pixels, the converted copy (CMYK, 16-bit grey) or turned copy (EXIF orientation), the
    alpha-premultiplied copy Pillow makes to shrink an RGBA or LA picture, ~1 byte of encoder buffers,
    and for a JPEG of several scans (progressive or not interleaved) every DCT
    coefficient, 2 bytes a sample, which libjpeg keeps until the last scan. Pillow's WebP decoder
    holds the canvas twice and libwebp's encoder its own planes: 18 bytes a pixel, 27 with alpha.
    """
    pixels = probe.width * probe.height
    alpha = "A" in probe.getbands() or "transparency" in probe.info
    if probe.format == "WEBP":
        return pixels * (27 if alpha else 18)
    if probe.mode.startswith("I"):
        # 16-bit grey: 2-byte pixels, two 4-byte copies to scale, 1 byte out; with a tRNS grey, its
        # alpha band (1 byte, read through a 4-byte copy first) and grey and alpha out
        return pixels * (13 if alpha else 10)
    # Pillow holds 1, L and P pictures in 1 byte a pixel and every other mode here in 4.
    decoded = 1 if probe.mode in ("1", "P", "L") else 4
    if probe.mode in KEPT_MODES[probe.format]:
        out, converted = decoded, 0
    else:
        out = 1 if probe.mode in ("1", "L") else 4
        converted = out
    turned = 2 * out if orientation in range(2, 9) else 0
    premultiplied = 2 * out if probe.mode in ("RGBA", "LA") or (converted and alpha) else 0
    peak = max(decoded + converted, turned, premultiplied) + 1
    if probe.format in ("JPEG", "MPO") and scans > 1:
        sampling = getattr(probe, "layer", None) or [(0, 1, 1, 0)] * len(probe.getbands())
        h_max = max(h for _c, h, _v, _q in sampling) or 1
        v_max = max(v for _c, _h, v, _q in sampling) or 1
        peak += sum(2 * h * v / (h_max * v_max) for _c, h, v, _q in sampling)
    return int(pixels * peak)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8), 1 when absent or not a number."""
    value = image.getexif().get(ORIENTATION_TAG, 1)
    return value if isinstance(value, int) else 1


def _too_large(width: int, height: int) -> EvidenceRejected:
    return EvidenceRejected(_("This picture is too large (%(w)d × %(h)d pixels); please send a normal screenshot.")
                            % {"w": width, "h": height})


def _pixels_only(image: Image.Image, orientation: int, fmt: str) -> tuple[Image.Image, dict]:
    """The picture turned as the phone meant, in a mode its format stores, with no metadata; and
    the save options that keep its transparency (a palette PNG's transparent entry).

    A PNG keeps its palette or 1-bit mode: turned into RGBA, a dense 5 MB palette picture became
    16 MB to compress (5.4 s). Each step replaces the previous picture (never two full copies
    alive but for a moment), and `info` is emptied: Pillow's savers read the ICC profile, PNG
    transparency and JPEG comment from it. EXIF, XMP and text chunks are only written when passed
    to save(), which we never do.
    """
    if orientation in range(2, 9):
        image = ImageOps.exif_transpose(image)
    params = {}
    if image.mode.startswith("I"):
        # Its tRNS grey value, as an alpha band (Pillow's RGBA conversion reads it), then dropped.
        alpha = image.convert("RGBA").getchannel("A") if "transparency" in image.info else None
        # 16-bit grey PNG: scale to 8 bits (a plain convert clips every value above 255 to white).
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
        if alpha is not None:  # 8 bits could not name the transparent grey alone: grey and alpha
            image.putalpha(alpha)
            del alpha
    elif image.mode in KEPT_MODES[fmt]:
        # A PNG's transparent palette entry, grey value or RGB colour (tRNS) is written again:
        # without it the transparent parts show their hidden colour, often black.
        if image.mode in ("P", "1", "L", "RGB") and fmt == "PNG" and "transparency" in image.info:
            params["transparency"] = image.info["transparency"]
    elif image.mode == "1":
        image = image.convert("L")
    else:
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    if fmt == "JPEG" and image.mode == "RGBA":
        image = image.convert("RGB")
    image.info = {}
    return image, params


# ISO base media "ftyp" brands of pictures Pillow cannot read here: HEIC/HEIF (an iPhone's
# camera, and what some phones share) and AVIF.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1",
                          b"msf1", b"avif", b"avis"})


def _not_image_message(data: bytes) -> str:
    """Why the file is refused, with what to do for the kinds people actually send: a phone's
    HEIC photo or a PDF is not "a broken file" to them."""
    message = _("This file is not a PNG, JPEG or WebP picture. Please upload a screenshot.")
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return _("This file is not a PNG, JPEG or WebP picture: it is a HEIC/HEIF photo (an iPhone camera's "
                 "format). Please take a screenshot of it and upload that, or choose \"Most Compatible\" "
                 "under Settings > Camera > Formats.")
    if data[:5] == b"%PDF-":
        return _("This file is not a PNG, JPEG or WebP picture: it is a PDF document. Please take a screenshot "
                 "of the page that shows the popup and upload that.")
    return message


def clean_image(upload) -> CleanImage:
    """Validate and re-encode one uploaded screenshot; raises EvidenceRejected with a clear message.

    Only Pillow's PNG, JPEG (and MPO, a phone's JPEG with extra frames) and WebP parsers ever see
    the bytes; the pixel limit and an estimate of the decoder's memory (`_decode_cost`) are
    checked from the header, before any pixel is decoded.
    """
    data = _read_limited(upload)
    max_pixels = settings.APPEALS_EVIDENCE_MAX_PIXELS
    max_bytes = settings.APPEALS_EVIDENCE_MAX_DECODE_MB * 1024 * 1024
    not_image = _not_image_message(data)
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; treat the warning as a refusal.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        scans = _structure_check(data)
        try:
            probe = Image.open(io.BytesIO(data), formats=OPEN_FORMATS)
            if probe.format not in OPENED_FORMATS:
                raise EvidenceRejected(not_image)
            width, height = probe.size
            if width * height > max_pixels or width <= 0 or height <= 0:
                raise _too_large(width, height)
            # A PNG's getexif() would decode its pixels: its orientation is checked after load.
            if _decode_cost(probe, scans, 1 if probe.format == "PNG" else _orientation(probe)) > max_bytes:
                raise _too_large(width, height)
            probe.verify()
            image = Image.open(io.BytesIO(data), formats=OPEN_FORMATS)
            image.load()  # a truncated file fails here (LOAD_TRUNCATED_IMAGES stays off)
            fmt = "JPEG" if image.format == "MPO" else image.format
            orientation = _orientation(image)  # a PNG's eXIf chunk may come after its pixels
            if _decode_cost(image, scans, orientation) > max_bytes:
                raise _too_large(width, height)
        except EvidenceRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise EvidenceRejected(_("This picture is too large to open safely; please send a normal screenshot.")) from None
        except UnidentifiedImageError:
            raise EvidenceRejected(not_image) from None
        except (OSError, SyntaxError, ValueError):
            raise EvidenceRejected(_("This picture is damaged or incomplete; please take the screenshot again.")) from None
    extension, content_type = ALLOWED_FORMATS[fmt]
    pixels, params = _pixels_only(image, orientation, fmt)
    del image
    out = io.BytesIO()
    if fmt == "JPEG":
        # No `optimize`: a second Huffman pass, 4x the encode time for ~5 % of the size.
        pixels.save(out, "JPEG", quality=88)
    elif fmt == "PNG":
        # zlib level 1: `optimize=True` (level 9 and a filter search) took 0.35 s of 0.42 s for a
        # phone screenshot; level 1 is 3x faster than the default 6 and, on screenshots with a
        # photo area, no larger (bench/uploads.py prints the sizes).
        pixels.save(out, "PNG", compress_level=1, **params)
    else:
        pixels.save(out, "WEBP", quality=88)
    # Image.thumbnail's size and filter, without its full-size copy: shrink, then convert the small picture.
    scale = min(THUMBNAIL_SIZE[0] / pixels.width, THUMBNAIL_SIZE[1] / pixels.height, 1)
    thumb_size = (max(1, round(pixels.width * scale)), max(1, round(pixels.height * scale)))
    # A JPEG thumbnail has no transparency: transparent parts are shown over white, as on the page.
    transparent = "A" in pixels.getbands() or "transparency" in params
    source = pixels
    if pixels.mode in ("P", "1") or (transparent and pixels.mode not in ("RGBA", "LA")):
        # Pillow shrinks P and 1 by nearest neighbour only, and a tRNS colour needs an alpha band:
        # shrink to 4x the thumbnail that way (no full-size copy), then convert and filter.
        coarse = (min(pixels.width, thumb_size[0] * 4), min(pixels.height, thumb_size[1] * 4))
        source = pixels.resize(coarse, Image.Resampling.NEAREST)
        source.info = {"transparency": params["transparency"]} if "transparency" in params else {}
        source = source.convert("RGBA" if transparent else "RGB")
    thumb = source.resize(thumb_size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    if transparent:
        thumb = Image.alpha_composite(Image.new("RGBA", thumb.size, (255, 255, 255, 255)), thumb.convert("RGBA"))
    thumb = thumb.convert("RGB")
    thumb_out = io.BytesIO()
    thumb.save(thumb_out, "JPEG", quality=80)
    cleaned = out.getvalue()
    return CleanImage(
        data=cleaned, thumbnail=thumb_out.getvalue(), extension=extension, content_type=content_type,
        width=pixels.width, height=pixels.height, sha256=hashlib.sha256(cleaned).hexdigest(),
    )


# A stored picture is shown by the browser only as a picture: were one ever to hold markup, a
# sandbox without any source allowed keeps it from running script or loading anything.
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"


def private_file_response(stored, *, content_type: str, filename: str = ""):
    """Serve a stored screenshot to someone already authorised: never cached, never sniffed,
    sandboxed, under a plain name; a row whose file has gone answers 404, not a 500.

    Ranges are not served (`Accept-Ranges: none`; a Range header gets the whole picture, 200):
    pictures are a few MB at most, and each full answer is one audited view, where partial
    fetches would write several rows for one look or show part of a picture unaudited.

    `content_type` is the one recorded when the picture was cleaned (the format Pillow found),
    never one derived from a name.
    """
    from django.http import FileResponse, Http404
    from django.utils.http import content_disposition_header

    try:
        handle = stored.open("rb")
    except (FileNotFoundError, ValueError) as exc:
        raise Http404 from exc
    except storage_errors() as exc:  # storage unreadable for now (permissions, I/O, unreachable)
        logger.error("evidence storage unreadable: %s (errno %s), answered 503", type(exc).__name__,
                     getattr(exc, "errno", None) or "-")
        from django.http import HttpResponse

        response = HttpResponse(_("This picture cannot be shown at the moment. Please try again in a few minutes."),
                                content_type="text/plain; charset=utf-8", status=503)
        response["Retry-After"] = "60"
        response["Cache-Control"] = "private, no-store"
        return response
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Accept-Ranges"] = "none"
    if filename:
        response["Content-Disposition"] = content_disposition_header(False, filename)
    return response
