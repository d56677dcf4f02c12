"""Hostile pictures at the one checking service every channel uses (appeals.evidence.clean_image):
only the PNG, JPEG and WebP parsers see the bytes, the decoder's memory is bounded from the header,
odd but genuine pictures keep their content, and no metadata survives in any format written."""

import io
import struct

import pytest
from PIL import Image, PngImagePlugin, TiffImagePlugin

from appeals.evidence import EvidenceRejected, clean_image
from tests.factories.appeals import upload


def _save(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def _clean(data: bytes):
    return clean_image(upload("x.png", data))


def test_sixteen_bit_grey_png_keeps_its_grey_instead_of_turning_white():
    # given a 16-bit greyscale PNG at 30000 of 65535 (a mid grey)
    data = _save(Image.new("I;16", (40, 30), 30000), "PNG")
    # when it is cleaned
    stored = Image.open(io.BytesIO(_clean(data).data))
    # then the stored picture is the same mid grey, not clipped to white
    assert stored.convert("L").getpixel((0, 0)) == 30000 // 257


def test_phone_photo_with_extra_frames_is_accepted_as_a_jpeg():
    # given a JPEG with a second frame (MPO: portrait-mode photos), which Pillow names "MPO"
    first, second = Image.new("RGB", (300, 200), (200, 0, 0)), Image.new("RGB", (150, 100), (0, 200, 0))
    data = _save(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    # when it is cleaned, then its first frame is stored as a plain JPEG
    cleaned = _clean(data)
    stored = Image.open(io.BytesIO(cleaned.data))
    assert (cleaned.content_type, cleaned.extension) == ("image/jpeg", "jpg")
    assert stored.format == "JPEG" and stored.size == (300, 200) and getattr(stored, "n_frames", 1) == 1
    assert stored.getpixel((10, 10))[0] > 150


def test_no_parser_but_png_jpeg_and_webp_ever_reads_an_upload(monkeypatch):
    # given a TIFF (libtiff's parser has a long list of advisories) and a spy on its parser
    data = _save(Image.new("RGB", (20, 20)), "TIFF")
    opened = []
    real_open = TiffImagePlugin.TiffImageFile._open
    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "_open", lambda self: opened.append(1) or real_open(self))
    # when it is uploaded, then it is refused as not a picture we take, and TIFF's parser never ran
    with pytest.raises(EvidenceRejected, match="not a PNG, JPEG or WebP"):
        _clean(data)
    assert opened == []


def test_decoder_memory_is_bounded_per_format_before_any_pixel_is_decoded(settings, monkeypatch):
    # given a 1 MB budget and four 400 x 400 pictures: an RGB PNG (~5 bytes a pixel to clean),
    # a WebP (libwebp: ~18-27 bytes a pixel) and a progressive JPEG (every DCT coefficient kept)
    settings.APPEALS_EVIDENCE_MAX_DECODE_MB = 1
    png = _save(Image.new("RGB", (400, 400), (1, 2, 3)), "PNG")
    webp = _save(Image.new("RGBA", (400, 400), (1, 2, 3, 4)), "WEBP")
    progressive = _save(Image.new("RGB", (400, 400), (1, 2, 3)), "JPEG", progressive=True, subsampling=0)
    baseline = _save(Image.new("RGB", (400, 400), (1, 2, 3)), "JPEG")
    # then the PNG and the baseline JPEG are taken
    assert _clean(png).width == 400 and _clean(baseline).width == 400
    # and the WebP and the progressive JPEG are refused from their headers, never decoded
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded a picture over the budget"))
    for data in (webp, progressive):
        with pytest.raises(EvidenceRejected, match="too large"):
            _clean(data)


def test_rgba_png_counts_the_copy_pillow_makes_to_shrink_it(settings):
    # given a budget that fits an RGB PNG of 600 x 600 but not an RGBA one (premultiplied copy)
    settings.APPEALS_EVIDENCE_MAX_DECODE_MB = 3
    assert _clean(_save(Image.new("RGB", (600, 600)), "PNG")).width == 600
    with pytest.raises(EvidenceRejected, match="too large"):
        _clean(_save(Image.new("RGBA", (600, 600)), "PNG"))


def _xmp(text: str) -> bytes:
    return (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            + text.encode() + b"</rdf:RDF></x:xmpmeta>")


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 17.0)}
    return exif


ICC = b"\x00\x00\x02\x30ICCPROFILEMARK" + b"\x00" * 540


@pytest.mark.parametrize("fmt,params", [
    ("JPEG", {"exif": _exif(), "icc_profile": ICC, "comment": b"13800138000 comment", "xmp": _xmp("13800138000")}),
    ("PNG", {"exif": _exif(), "icc_profile": ICC}),
    ("WEBP", {"exif": _exif(), "icc_profile": ICC, "xmp": _xmp("13800138000")}),
    ("MPO", {"exif": _exif(), "save_all": True, "append_images": [Image.new("RGB", (8, 8))]}),
])
def test_no_metadata_survives_in_any_format_written(fmt, params):
    # given a picture carrying EXIF with GPS, an ICC profile, a comment, XMP or text chunks
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", "13800138000")
        info.add_itxt("XML:com.adobe.xmp", _xmp("13800138000").decode(), zip=True)
        params = {**params, "pnginfo": info}
    data = _save(Image.new("RGB", (64, 48), (9, 99, 199)), fmt, **params)
    # when it is cleaned
    cleaned = _clean(data)
    stored = Image.open(io.BytesIO(cleaned.data))
    # then the stored bytes hold pixels only
    for marker in (b"PhoneMaker", b"Exif", b"ICCPROFILEMARK", b"13800138000", b"xmpmeta", b"iCCP", b"tEXt", b"iTXt"):
        assert marker not in cleaned.data, marker
    assert len(stored.getexif()) == 0 and "icc_profile" not in stored.info
    assert stored.size == (64, 48)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_picture_is_stored_as_its_first_frame_only(fmt):
    frames = [Image.new("RGB", (40, 40), (i * 50, 0, 0)) for i in range(5)]
    data = _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 5
    stored = Image.open(io.BytesIO(_clean(data).data))
    assert getattr(stored, "n_frames", 1) == 1 and not getattr(stored, "is_animated", False)


def test_png_orientation_written_after_its_pixels_is_still_applied():
    # given a PNG 40 x 20 whose eXIf chunk (orientation 6, turn right) follows its pixel data
    data = _save(Image.new("RGB", (40, 20), (1, 2, 3)), "PNG")
    exif = _exif()
    exif[0x0112] = 6
    payload = exif.tobytes()[6:]  # the TIFF body, without the "Exif\0\0" JPEG header
    import zlib
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload + struct.pack(">I", zlib.crc32(b"eXIf" + payload))
    data = data[:-12] + chunk + data[-12:]
    # when it is cleaned, then it is stored turned
    assert _clean(data).width == 20


def test_malformed_orientation_values_are_ignored():
    exif = b"Exif\0\0II\x2a\0\x08\0\0\0" + struct.pack("<HHHI", 1, 0x0112, 2, 2) + b"x\0\0\0" + struct.pack("<I", 0)
    cleaned = _clean(_save(Image.new("RGB", (50, 40)), "JPEG", exif=exif))
    assert (cleaned.width, cleaned.height) == (50, 40)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    import zlib

    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_with(extra: bytes, size=(20, 10)) -> bytes:
    """A valid PNG with `extra` chunks between its header and its pixels."""
    data = _save(Image.new("RGB", size, (5, 6, 7)), "PNG")
    end_of_ihdr = 8 + 25
    return data[:end_of_ihdr] + extra + data[end_of_ihdr:]


def _jpeg_with_scans(repeats: int) -> bytes:
    """A progressive JPEG whose second scan is repeated: libjpeg runs each over the whole picture."""
    data = _save(Image.new("RGB", (64, 64), (30, 90, 200)), "JPEG", progressive=True)
    starts = [i for i in range(len(data) - 1) if data[i:i + 2] == b"\xff\xda"]
    second = data[starts[1]:starts[2]]
    return data[:-2] + second * repeats + b"\xff\xd9"


def _refused_unread(data: bytes, monkeypatch) -> None:
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("Pillow read a file built of too many parts"))
    with pytest.raises(EvidenceRejected, match="built in an unusual way"):
        _clean(data)


@pytest.mark.parametrize("build", [
    lambda: _png_with(_png_chunk(b"tEXt", b"k\x00v") * 10_001),     # Pillow parses each in Python
    lambda: _png_with(_png_chunk(b"abCd", b"") * 10_001),           # unknown chunks, the same
    lambda: (lambda d: d[:2] + b"\xff\xfe\x00\x02" * 10_001 + d[2:])(_save(Image.new("RGB", (8, 8)), "JPEG")),
    lambda: (lambda d: d[:2] + b"\x00" * 10_001 + d[2:])(_save(Image.new("RGB", (8, 8)), "JPEG")),  # stray bytes
    lambda: _jpeg_with_scans(100),
], ids=["png-text-chunks", "png-unknown-chunks", "jpeg-comments", "jpeg-stray-bytes", "jpeg-100-scans"])
def test_file_of_too_many_parts_is_refused_before_pillow_reads_it(build, monkeypatch):
    # 10 MB of such parts took 6-18 s to open (PNG chunks and JPEG segments are read in Python,
    # every JPEG scan is decoded over the whole picture)
    _refused_unread(build(), monkeypatch)


def test_genuine_files_of_many_parts_are_taken():
    # a PNG with its pixels in 2,000 chunks (libpng writes 8 KB chunks) and a progressive JPEG
    data = _save(Image.effect_noise((200, 200), 60).convert("RGB"), "PNG")
    ihdr_end = 8 + 25
    idat_at = data.index(b"IDAT") - 4
    length = int.from_bytes(data[idat_at:idat_at + 4], "big")
    pixels = data[idat_at + 8:idat_at + 8 + length]
    step = max(1, len(pixels) // 2000)
    chunks = b"".join(_png_chunk(b"IDAT", pixels[i:i + step]) for i in range(0, len(pixels), step))
    split = data[:ihdr_end] + chunks + data[idat_at + 12 + length:]
    assert split.count(b"IDAT") > 1500
    assert _clean(split).width == 200
    assert _clean(_jpeg_with_scans(0)).width == 64


def test_palette_png_stays_a_palette_with_its_transparency():
    # given a palette PNG whose entry 0 is transparent (a dense one of these, made RGBA, was 3x
    # the data to compress: 5.4 s for a 5 MB file)
    image = Image.new("P", (60, 40), 0)
    image.putpalette([255, 255, 255, 200, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 30, 40))
    data = _save(image, "PNG", transparency=0)
    # when it is cleaned
    cleaned = _clean(data)
    stored = Image.open(io.BytesIO(cleaned.data))
    # then it is still a palette picture, the right half transparent and the left half red
    assert stored.mode == "P" and stored.info.get("transparency") == 0
    rgba = stored.convert("RGBA")
    assert rgba.getpixel((50, 20))[3] == 0 and rgba.getpixel((10, 20)) == (200, 0, 0, 255)
    thumb = Image.open(io.BytesIO(cleaned.thumbnail))
    assert thumb.size == (60, 40) and thumb.getpixel((10, 20))[0] > 150


def test_one_bit_png_stays_one_bit():
    image = Image.new("1", (80, 30), 0)
    image.paste(1, (0, 0, 40, 30))
    stored = Image.open(io.BytesIO(_clean(_save(image, "PNG")).data))
    assert stored.mode == "1" and stored.getpixel((10, 10)) == 255 and stored.getpixel((70, 10)) == 0
