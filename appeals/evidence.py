"""Screenshot checks and re-encoding with Pillow.

An upload is accepted only if it really is a PNG, JPEG or WebP within the byte and pixel limits,
decodes completely (truncated files fail), and is not a decompression bomb. What is stored is a
fresh encoding of the pixels: EXIF (including GPS), text chunks and ICC profiles are dropped.
"""

import hashlib
import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from healthkit.errors import ApplicationError

ALLOWED_FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"), "WEBP": ("webp", "image/webp")}
THUMBNAIL_SIZE = (320, 320)
ORIENTATION_TAG = 0x0112


class EvidenceRejected(ApplicationError):
    """The file is not an image we accept; the message says why in plain words."""


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


def clean_image(upload) -> CleanImage:
    """Validate and re-encode one uploaded screenshot; raises EvidenceRejected with a clear message."""
    data = _read_limited(upload)
    max_pixels = settings.APPEALS_EVIDENCE_MAX_PIXELS
    not_image = _("This file is not a PNG, JPEG or WebP picture. Please upload a screenshot.")
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; treat the warning as a refusal.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))
            if probe.format not in ALLOWED_FORMATS:
                raise EvidenceRejected(not_image)
            width, height = probe.size
            if width * height > max_pixels or width <= 0 or height <= 0:
                raise EvidenceRejected(_("This picture is too large (%(w)d × %(h)d pixels); please send a normal screenshot.")
                                       % {"w": width, "h": height})
            probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()  # a truncated file fails here (LOAD_TRUNCATED_IMAGES stays off)
        except EvidenceRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise EvidenceRejected(_("This picture is too large to open safely; please send a normal screenshot.")) from None
        except UnidentifiedImageError:
            raise EvidenceRejected(not_image) from None
        except (OSError, SyntaxError, ValueError):
            raise EvidenceRejected(_("This picture is damaged or incomplete; please take the screenshot again.")) from None
    fmt = image.format
    extension, content_type = ALLOWED_FORMATS[fmt]
    if image.getexif().get(ORIENTATION_TAG, 1) != 1:
        image = ImageOps.exif_transpose(image)  # keep the orientation the phone meant (EXIF goes below)
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
    if fmt == "JPEG" and image.mode == "RGBA":
        image = image.convert("RGB")
    # A fresh image holds pixels only: no info dict, EXIF, XMP, ICC or text chunks are carried.
    pixels = Image.new(image.mode, image.size)
    pixels.paste(image)
    out = io.BytesIO()
    if fmt == "JPEG":
        # No `optimize`: a second Huffman pass, 4x the encode time for ~5 % of the size.
        pixels.save(out, "JPEG", quality=88)
    elif fmt == "PNG":
        # zlib level 1: `optimize=True` (level 9 and a filter search) took 0.35 s of 0.42 s for a
        # phone screenshot; level 1 is 3x faster than the default 6 and, on screenshots with a
        # photo area, no larger (bench/uploads.py prints the sizes).
        pixels.save(out, "PNG", compress_level=1)
    else:
        pixels.save(out, "WEBP", quality=88)
    # Image.thumbnail's size and filter, without its full-size copy: shrink, then convert the small picture.
    scale = min(THUMBNAIL_SIZE[0] / pixels.width, THUMBNAIL_SIZE[1] / pixels.height, 1)
    thumb_size = (max(1, round(pixels.width * scale)), max(1, round(pixels.height * scale)))
    thumb = pixels.resize(thumb_size, Image.Resampling.BICUBIC, reducing_gap=2.0).convert("RGB")
    thumb_out = io.BytesIO()
    thumb.save(thumb_out, "JPEG", quality=80)
    cleaned = out.getvalue()
    return CleanImage(
        data=cleaned, thumbnail=thumb_out.getvalue(), extension=extension, content_type=content_type,
        width=pixels.width, height=pixels.height, sha256=hashlib.sha256(cleaned).hexdigest(),
    )


def private_file_response(stored, *, content_type: str, filename: str = ""):
    """Serve a stored screenshot to someone already authorised: never cached, never sniffed; a
    row whose file has gone answers 404, not a 500."""
    from django.http import FileResponse, Http404

    try:
        handle = stored.open("rb")
    except (FileNotFoundError, ValueError) as exc:
        raise Http404 from exc
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    if filename:
        response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response
