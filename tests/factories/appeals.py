"""Factories and picture helpers for the appeals tests."""

import datetime as dt
import io
import secrets
import struct
import zlib

import factory
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from appeals.models import Appeal, AppealEvent
from appeals.services import sla_due
from tests.factories import ResidentFactory


class AppealFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Appeal

    reference = factory.LazyFunction(lambda: "T" + secrets.token_hex(4).upper())
    resident = factory.SubFactory(ResidentFactory)
    category = Appeal.Category.CORRECTION
    priority = Appeal.Priority.NORMAL
    community = factory.LazyAttribute(lambda o: o.resident.community)
    created_at = factory.LazyFunction(timezone.now)
    sla_due_at = factory.LazyAttribute(lambda o: sla_due(o.priority, o.created_at))


class AppealEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AppealEvent

    appeal = factory.SubFactory(AppealFactory)
    kind = AppealEvent.Kind.FILED


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (120, 200), color=(20, 120, 80), exif_gps: bool = False) -> bytes:
    image = Image.new("RGB", size, color)
    out = io.BytesIO()
    if exif_gps:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"  # Make
        exif[0x0110] = "PhoneModel"  # Model
        exif[0x0132] = "2022:11:20 10:00:00"
        gps = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 17.0)}
        exif[0x8825] = gps
        image.save(out, fmt, exif=exif)
    else:
        image.save(out, fmt)
    return out.getvalue()


def upload(name: str = "shot.png", data: bytes | None = None, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data if data is not None else image_bytes(), content_type=content_type)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(side: int = 50000) -> bytes:
    """A few hundred bytes claiming side×side pixels: a decompression bomb (header is all Pillow
    needs to see it; the rows are a zlib stream of zeros)."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side // 8 + 1) * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def days_ago(days: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)
