"""Printable venue posters (场所码): the QR code of the venue's stable code, its name and an
instruction line, as PNG (Pillow) and SVG. The QR symbol comes from segno (maintained, pure
Python; always a full QR code, never a Micro QR that phones cannot read).

Chinese venue names need a CJK font. The PNG uses `VENUES_POSTER_FONT` if set, else the first
font fontconfig reports for `:lang=zh`. A machine without one still gets a working poster: the
PNG then prints the venue code in place of the name (and the instruction in English), while the
SVG always carries the real name as text, rendered by the viewer's or printer's own fonts.
"""

import functools
import io
import os
import shutil
import subprocess  # noqa: S404 - fixed argv, no shell, no input
from xml.sax.saxutils import escape

import segno
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from PIL import Image, ImageDraw, ImageFont

from venues.models import Venue

WIDTH, HEIGHT = 1200, 1650
QR_SIZE = 860
INSTRUCTION_MSGID = gettext_noop("Scan with Health Kit before entering")
SVG_FONTS = ("'Noto Sans CJK SC', 'Source Han Sans SC', 'WenQuanYi Micro Hei', 'PingFang SC', "
             "'Microsoft YaHei', 'SimHei', sans-serif")


def qr_payload(venue: Venue) -> str:
    """What the resident app reads from the poster: the prefix and the venue's stable code."""
    return f"{settings.VENUES_QR_PREFIX}{venue.code}"


def code_from_payload(payload: str) -> str | None:
    prefix = settings.VENUES_QR_PREFIX
    return payload[len(prefix):] if payload.startswith(prefix) else None


def _qr(venue: Venue) -> segno.QRCode:
    return segno.make_qr(qr_payload(venue), error="m")


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Path of a font with Chinese glyphs, or None (then the posters degrade, see module doc)."""
    configured = getattr(settings, "VENUES_POSTER_FONT", "")
    if configured and os.path.exists(configured):
        return configured
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        out = subprocess.run([fc_list, ":lang=zh", "file"], capture_output=True, text=True,  # noqa: S603
                             timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    paths = sorted(line.split(":")[0].strip() for line in out.splitlines() if line.strip())
    # Prefer sans-serif faces (more legible on a printed sign).
    paths.sort(key=lambda p: (not any(k in p.lower() for k in ("sans", "hei", "wqy")), p))
    return next((p for p in paths if os.path.exists(p)), None)


def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    return ImageFont.load_default(size=size)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, max_width: int, max_lines: int = 2) -> list[str]:
    """Wrap by character (Chinese has no spaces), at most `max_lines`, ellipsis if cut."""
    lines, current = [], ""
    for char in text:
        if draw.textlength(current + char, font=font) <= max_width:
            current += char
            continue
        lines.append(current)
        current = char
        if len(lines) == max_lines:
            break
    else:
        lines.append(current)
        return [line for line in lines if line]
    lines[-1] = lines[-1][:-1] + "…"
    return lines


def _centered(draw: ImageDraw.ImageDraw, y: int, text: str, font, fill: str) -> int:
    width = draw.textlength(text, font=font)
    draw.text(((WIDTH - width) / 2, y), text, font=font, fill=fill)
    bbox = draw.textbbox((0, 0), text or " ", font=font)
    return y + (bbox[3] - bbox[1]) + 18


def poster_png(venue: Venue, *, font_path: str | None = ...) -> bytes:  # type: ignore[assignment]
    """The poster as PNG bytes (1200×1650, prints at A5/A4)."""
    if font_path is ...:
        font_path = find_cjk_font()
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 150), fill="#0b6e4f")
    has_cjk = font_path is not None
    title = _("Venue code") if has_cjk else "Venue code"
    _centered(draw, 40, title, _font(font_path, 64), "white")

    y = 190
    name_font = _font(font_path, 68)
    name = venue.name if (has_cjk or venue.name.isascii()) else venue.code
    for line in _wrap(draw, name, name_font, WIDTH - 120):
        y = _centered(draw, y, line, name_font, "#1d2430")

    qr = _qr(venue)
    modules = qr.symbol_size(scale=1, border=4)[0]
    scale = max(1, QR_SIZE // modules)
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=scale, border=4)
    buffer.seek(0)
    symbol = Image.open(buffer).convert("RGB")
    y = max(y + 10, 360)
    image.paste(symbol, ((WIDTH - symbol.width) // 2, y))
    y += symbol.height + 20

    y = _centered(draw, y, venue.code, _font(font_path, 48), "#1d2430")
    instruction = _(INSTRUCTION_MSGID) if has_cjk else INSTRUCTION_MSGID
    _centered(draw, y, instruction, _font(font_path, 44), "#b54708")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def poster_svg(venue: Venue) -> str:
    """The poster as a standalone SVG document; text stays text (any CJK font of the viewer)."""
    qr = _qr(venue)
    border = 4
    size = qr.symbol_size(scale=1, border=border)[0]
    scale = QR_SIZE / size
    path = "".join(
        f"M{x},{y}h1v1h-1z"
        for y, row in enumerate(qr.matrix_iter(scale=1, border=border))
        for x, dark in enumerate(row) if dark
    )
    qr_y = 380
    name = escape(venue.name)
    title = escape(_("Venue code"))  # not inside the f-string: xgettext cannot read a call there
    # A long name is squeezed to the width (about one em per Chinese character); never stretched.
    fit = (f' textLength="{WIDTH - 120}" lengthAdjust="spacingAndGlyphs"'
           if len(venue.name) * 68 > WIDTH - 120 else "")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}">'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>'
        f'<rect width="{WIDTH}" height="150" fill="#0b6e4f"/>'
        f'<g font-family="{SVG_FONTS}" text-anchor="middle">'
        f'<text x="{WIDTH // 2}" y="100" font-size="64" fill="#fff">{title}</text>'
        f'<text x="{WIDTH // 2}" y="280" font-size="68" fill="#1d2430"{fit}>{name}</text>'
        f'<text x="{WIDTH // 2}" y="{qr_y + QR_SIZE + 70}" font-size="48" fill="#1d2430">'
        f'{escape(venue.code)}</text>'
        f'<text x="{WIDTH // 2}" y="{qr_y + QR_SIZE + 140}" font-size="44" fill="#b54708">'
        f'{escape(_(INSTRUCTION_MSGID))}</text></g>'
        f'<g transform="translate({(WIDTH - QR_SIZE) / 2},{qr_y}) scale({scale:.4f})">'
        f'<path fill="#000" shape-rendering="crispEdges" d="{path}"/></g>'
        "</svg>\n"
    )
