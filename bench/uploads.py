"""Evidence upload: the project's picture cleaning (appeals.evidence.clean_image: checks, EXIF
orientation, a fresh pixel copy, re-encode, thumbnail) against bare Pillow doing the same work
(decode, save in the same format, thumbnail to JPEG), for phone screenshots of 1-3 MB generated
here (1170 x 2532 and 1080 x 2400, status bar, text lines, a photo area with camera noise, EXIF
with GPS on the JPEGs). Prints medians, the ratio (reference time / project time; aim >= 0.9) and
the p95 of the project with 2 uploads at a time (aim <= 1.5 s; bare Pillow's p95 the same way
beside it). No database is touched. Each figure is also printed through `bench/report.py`
(`RESULT` lines for `bench/run_all.py`).

    .venv/bin/python bench/uploads.py
    .venv/bin/python bench/uploads.py --worst   # the largest picture accepted of each kind

`--worst` builds, for each kind of picture that costs most per pixel (RGBA and palette PNG,
16-bit grey, progressive and CMYK JPEG, turned JPEG, WebP with and without alpha), the largest
one `clean_image` accepts under APPEALS_EVIDENCE_MAX_PIXELS and APPEALS_EVIDENCE_MAX_DECODE_MB,
and cleans each in a fresh process: time and peak memory (aim: <= 2 s, <= 300 MB), next to the
estimate `_decode_cost` made from the header.
"""

import argparse
import io
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthkit.settings")
os.environ["DJANGO_DEBUG"] = "false"  # as in production: DEBUG keeps every query and wraps every cursor
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")  # settings need one; never used


def screenshot(size: tuple[int, int], fmt: str, seed: int) -> bytes:
    """A phone screenshot: flat UI, lines of text, and a photo-like area (what makes them 1-3 MB)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size, (246, 246, 246))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, 110), fill=(30, 140, 90))
    for y in range(160, height // 2, 70):
        draw.rectangle((60, y, 60 + rng.randint(300, width - 120), y + 34), fill=(40, 40, 40))
    photo_box = (40, height // 2, width - 40, height - 200)
    noise = Image.effect_noise((photo_box[2] - photo_box[0], photo_box[3] - photo_box[1]), 60)
    photo = Image.merge("RGB", [noise.point(lambda v, k=k: (v + 40 * k) % 256) for k in range(3)])
    image.paste(photo.resize(photo.size, Image.Resampling.BOX), photo_box[:2])
    out = io.BytesIO()
    if fmt == "JPEG":
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"
        exif[0x0112] = 1
        exif[0x8825] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 17.0)}
        image.save(out, "JPEG", quality=92, exif=exif)
    else:
        image.save(out, "PNG")
    return out.getvalue()


def bare(data: bytes) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    out = io.BytesIO()
    image.save(out, image.format, **({"quality": 88} if image.format == "JPEG" else {}))
    thumb = image.copy()
    thumb.thumbnail((320, 320))
    thumb.convert("RGB").save(io.BytesIO(), "JPEG", quality=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9, help="interleaved runs per picture (the median is kept)")
    parser.add_argument("--worst", action="store_true", help="the largest accepted picture of each costly kind")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: clean one file in this process
    args = parser.parse_args()
    if args.one:
        return clean_one(args.one)
    if args.worst:
        return worst()
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from appeals.evidence import clean_image
    from bench.report import emit

    def project(data: bytes):
        return clean_image(SimpleUploadedFile("s", data, content_type="application/octet-stream"))

    samples = [(fmt, size, screenshot(size, fmt, seed))
               for seed, (fmt, size) in enumerate([("PNG", (1170, 2532)), ("PNG", (1080, 2400)),
                                                   ("JPEG", (1170, 2532))])]
    print(f"{'picture':24s} {'MB':>5s} {'project ms':>10s} {'bare Pillow ms':>14s} {'ratio':>6s} {'out MB':>7s} {'EXIF out':>8s}")
    for fmt, size, data in samples:
        runs = args.runs
        proj, ref = [], []
        for _ in range(runs):  # interleaved, so the machine's load falls on both alike
            started = time.perf_counter()
            cleaned = project(data)
            proj.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            bare(data)
            ref.append((time.perf_counter() - started) * 1000)
        p, r = statistics.median(proj), statistics.median(ref)
        exif_left = bool(Image.open(io.BytesIO(cleaned.data)).getexif())
        print(f"{fmt + ' ' + 'x'.join(map(str, size)):24s} {len(data) / 1e6:5.2f} {p:10.0f} {r:14.0f} {r / p:6.2f} "
              f"{len(cleaned.data) / 1e6:7.2f} {str(exif_left):>8s}")
        emit(f"evidence upload, {fmt} {size[0]}x{size[1]} {len(data) / 1e6:.1f} MB", project=p, reference=r,
             unit="ms", ratio=r / p, aim=">= 0.9", scale=f"one picture, median of {runs} interleaved runs",
             ratio_is="reference / project (speed as a fraction of bare Pillow)",
             stored_mb=round(len(cleaned.data) / 1e6, 2), exif_left=exif_left)
    # Two uploads at a time (two gunicorn threads or workers on the 2 cores).
    items = [data for _fmt, _size, data in samples] * 4
    proj_p50, proj_p95, n = concurrent(project, items)
    bare_p50, bare_p95, _n = concurrent(bare, items)
    print(f"2 concurrent uploads, {n} pictures: p50 {proj_p50:.0f} ms, p95 {proj_p95:.0f} ms "
          f"(bare Pillow the same way: p50 {bare_p50:.0f} ms, p95 {bare_p95:.0f} ms)")
    emit("evidence upload, p95 with 2 concurrent uploads", project=proj_p95, reference=1500.0, unit="ms",
         ratio=proj_p95 / 1500.0, aim="<= 1", scale=f"{n} pictures (the 3 above x 4) on 2 threads",
         reference_is="the aim, p95 1.5 s", bare_pillow_p95_ms=round(bare_p95, 1), project_p50_ms=round(proj_p50, 1))


WORST_KINDS = {
    # name: (mode, save format, save options, EXIF orientation)
    "PNG RGBA": ("RGBA", "PNG", {}, 1),
    "PNG palette + transparency": ("P", "PNG", {"transparency": 0}, 1),
    "PNG grey + alpha": ("LA", "PNG", {}, 1),
    "PNG 16-bit grey": ("I;16", "PNG", {}, 1),
    "PNG RGB": ("RGB", "PNG", {}, 1),
    "JPEG baseline": ("RGB", "JPEG", {"quality": 90}, 1),
    "JPEG turned (EXIF 6)": ("RGB", "JPEG", {"quality": 90}, 6),
    "JPEG progressive 4:4:4": ("RGB", "JPEG", {"progressive": True, "subsampling": 0}, 1),
    "JPEG CMYK progressive": ("CMYK", "JPEG", {"progressive": True}, 1),
    "WebP RGB": ("RGB", "WEBP", {"quality": 80}, 1),
    "WebP RGBA": ("RGBA", "WEBP", {"quality": 80}, 1),
}


def _long_screenshot(mode: str, fmt: str, options: dict, orientation: int, height: int) -> bytes:
    """A 1080-wide long screenshot of `height` rows: flat colour with a bar every 200 rows."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1080, height), (246, 246, 246))
    draw = ImageDraw.Draw(image)
    for y in range(0, height, 200):
        draw.rectangle((40, y, 1040, y + 30), fill=(40, 120, 200))
    image = image.convert(mode) if mode != "I;16" else image.convert("L").point(lambda v: v * 256, "I").convert("I;16")
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    image.save(out, fmt, exif=exif, **options)
    return out.getvalue()


def worst() -> None:
    """Largest accepted picture per costly kind, each cleaned in a fresh process (peak RSS is per process)."""
    import subprocess
    import tempfile

    import django

    django.setup()
    from django.conf import settings
    from PIL import Image

    from appeals.evidence import _decode_cost, _orientation, _structure_check
    from bench.report import emit

    budget = settings.APPEALS_EVIDENCE_MAX_DECODE_MB * 1024 * 1024
    max_height = settings.APPEALS_EVIDENCE_MAX_PIXELS // 1080

    def cost(data: bytes) -> int:
        probe = Image.open(io.BytesIO(data))
        return _decode_cost(probe, _structure_check(data), _orientation(probe) if probe.format != "PNG" else 1)

    print(f"{'picture (1080 wide)':28s} {'rows':>6s} {'MP':>5s} {'file MB':>7s} {'estimate MB':>11s} {'ms':>6s} {'peak MB':>7s}")
    for name, (mode, fmt, options, orientation) in WORST_KINDS.items():
        data = _long_screenshot(mode, fmt, options, orientation, 1000)
        # Cost is linear in rows: scale once, then step down until the header check accepts it.
        height = min(max_height, int(1000 * budget / cost(data)), 16383 if fmt == "WEBP" else max_height)
        data = _long_screenshot(mode, fmt, options, orientation, height)
        while cost(data) > budget:
            height = int(height * 0.97)
            data = _long_screenshot(mode, fmt, options, orientation, height)
        with tempfile.NamedTemporaryFile(suffix=".bin") as fh:
            fh.write(data)
            fh.flush()
            run = subprocess.run([sys.executable, __file__, "--one", fh.name], capture_output=True, text=True, check=True)
        ms, peak_mb, outcome = run.stdout.split()[-3:]
        print(f"{name:28s} {height:6d} {1080 * height / 1e6:5.1f} {len(data) / 1e6:7.2f} {cost(data) / 2**20:11.0f} "
              f"{float(ms):6.0f} {float(peak_mb):7.0f} {outcome}")
        emit(f"evidence upload, largest accepted {name}", project=float(ms), reference=2000.0, unit="ms",
             ratio=float(ms) / 2000.0, aim="<= 1", scale=f"1080 x {height}, one picture in a fresh process",
             reference_is="the aim, 2 s", peak_mb=float(peak_mb), peak_aim_mb=300,
             estimate_mb=round(cost(data) / 2**20), accepted=outcome == "accepted")


def clean_one(path: str) -> None:
    """Clean one file; print its time (ms), the memory it added at peak (MB) and the outcome.

    Peak from /proc's VmHWM (this process's own high-water mark): getrusage's ru_maxrss keeps
    the parent's figure across fork and exec, so a child smaller than its parent reads 0.
    """
    import django

    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile

    from appeals.evidence import EvidenceRejected, clean_image

    with open(path, "rb") as fh:
        data = fh.read()
    before = _high_water_kb()
    started = time.perf_counter()
    try:
        clean_image(SimpleUploadedFile("s", data))
        outcome = "accepted"
    except EvidenceRejected:
        outcome = "refused"
    ms = (time.perf_counter() - started) * 1000
    print(ms, (_high_water_kb() - before) / 1024, outcome)


def _high_water_kb() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


def concurrent(fn, items: list[bytes]) -> tuple[float, float, int]:
    """p50, p95 (ms) and count of `fn` over `items` run on two threads at once."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker():
        for data in items:
            started = time.perf_counter()
            fn(data)
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    p95 = latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
    return statistics.median(latencies), p95, len(latencies)


if __name__ == "__main__":
    main()
