"""The product has one clock (healthkit.clock): every read of "now" or "today" goes through it,
so a replay or a test that sets the clock moves every date at once, and "today" is the city's
date (Asia/Shanghai: the day starts at 16:00 UTC), not the server's.

The first test walks the source of every product module (an AST walk, migrations left out:
they record Django's defaults as they were) and fails on any direct read of the wall clock; the
others check the behaviour around Beijing's midnight where a date is read."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from communities import forms as registry_forms
from communities import pii
from healthkit import clock, inputs
from healthkit.ingest import _id_number_and_hash

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("healthkit", "communities", "appeals", "venues")
UTC = dt.UTC

# Calls that read the wall clock whatever their arguments: (object's last name, attribute)
_ALWAYS = {("timezone", "now"), ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"),
           ("date", "today"), ("time", "time"), ("time", "time_ns")}
# Calls that read it when given no instant: timezone.localdate(), time.localtime(), ...
_WITHOUT_ARGUMENT = {("timezone", "localdate"), ("timezone", "localtime"), ("time", "localtime"),
                     ("time", "gmtime"), ("time", "ctime")}
_IMPORTED = {("django.utils.timezone", "now"), ("django.utils.timezone", "localdate"),
             ("django.utils.timezone", "localtime"), ("time", "time"), ("time", "time_ns")}


def _name(node: ast.AST) -> tuple[str, str] | None:
    """(last name of the object, attribute) of `a.b.c`: ("b", "c")."""
    if isinstance(node, ast.Attribute):
        base = node.value
        last = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
        return last, node.attr
    return None


def wall_clock_reads(source: str) -> list[tuple[int, str]]:
    """(line, what) for each direct read of the wall clock in `source`."""
    tree = ast.parse(source)
    called: set[int] = set()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called.add(id(node.func))
            name = _name(node.func)
            if name in _ALWAYS or (name in _WITHOUT_ARGUMENT and not node.args and not node.keywords):
                found.append((node.lineno, f"{name[0]}.{name[1]}()"))
            for keyword in node.keywords:
                # Django's auto_now / auto_now_add stamp with its own timezone.now()
                if keyword.arg in ("auto_now", "auto_now_add") and _name(node.func) != ("clock", "DateTimeField"):
                    found.append((node.lineno, f"{keyword.arg}= on a Django field (use clock.DateTimeField)"))
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if (node.module, alias.name) in _IMPORTED:
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
    for node in ast.walk(tree):
        # a reference handed on to be called later: default=timezone.now, a callback
        if isinstance(node, ast.Attribute) and id(node) not in called and _name(node) in _ALWAYS:
            found.append((node.lineno, f"{_name(node)[0]}.{_name(node)[1]} (passed on)"))
    return found


def _product_sources() -> list[Path]:
    files = []
    for package in PACKAGES:
        files += [p for p in (ROOT / package).rglob("*.py")
                  if "migrations" not in p.parts and p != ROOT / "healthkit" / "clock.py"]
    return files


# Reads left on the wall clock, each with its reason.
WALL_CLOCK_ALLOWED = {
    # a staff API token's age: DRF stamps Token.created with Django's own timezone.now(), so its
    # expiry is measured on the same clock (authentication, not the product's time)
    ("healthkit/auth.py", "timezone.now()"),
}


def test_no_product_module_reads_the_wall_clock_directly():
    sources = _product_sources()
    assert len(sources) > 100  # the walk finds the product
    found = [f"{path.relative_to(ROOT)}:{line}: {what}"
             for path in sources for line, what in wall_clock_reads(path.read_text())
             if (str(path.relative_to(ROOT)), what) not in WALL_CLOCK_ALLOWED]
    assert not found, "read the time through healthkit.clock:\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    "from django.utils import timezone\nx = timezone.now()",
    "import datetime as dt\nx = dt.date.today()",
    "import datetime as dt\nx = dt.datetime.now(dt.UTC)",
    "from datetime import datetime\nx = datetime.utcnow()",
    "import time\nx = time.time()",
    "from django.utils import timezone\nx = timezone.localdate()",
    "from django.utils import timezone\nx = timezone.localtime()",
    "from django.utils.timezone import now",
    "from django.db import models\nf = models.DateTimeField(auto_now_add=True)",
    "from django.db import models\nfrom django.utils import timezone\nf = models.DateTimeField(default=timezone.now)",
])
def test_the_walk_finds_each_kind_of_wall_clock_read(source):
    assert wall_clock_reads(source)


@pytest.mark.parametrize("source", [
    "from healthkit import clock\nx = clock.now()",
    "from django.utils import timezone\nx = timezone.localdate(at)",
    "from django.utils import timezone\nx = timezone.localtime(instant)",
    "import time\nx = time.monotonic()",
    "from healthkit import clock\nf = clock.DateTimeField(auto_now_add=True)",
])
def test_the_walk_leaves_reads_of_an_instant_given(source):
    assert not wall_clock_reads(source)


# Beijing's midnight starting 2022-07-16 (the day the rules changed) is 2022-07-15 16:00 UTC.
BEFORE_MIDNIGHT = dt.datetime(2022, 7, 15, 15, 59, 59, tzinfo=UTC)
AFTER_MIDNIGHT = dt.datetime(2022, 7, 15, 16, 0, 1, tzinfo=UTC)


def test_today_is_the_city_date_not_the_utc_date():
    with clock.frozen_at(BEFORE_MIDNIGHT):
        assert clock.today() == dt.date(2022, 7, 15)
    with clock.frozen_at(AFTER_MIDNIGHT):
        assert clock.today() == dt.date(2022, 7, 16)  # still the 15th in UTC
        assert clock.localtime().hour == 0


def _id_number(birth: str) -> str:
    body = f"110101{birth}123"
    return body + pii.id_check_digit(body)


def test_a_birth_date_is_plausible_from_the_city_day_it_falls_on():
    # given a child born on 2022-07-16 (city date), registered in the first minutes of that day
    number = _id_number("20220716")
    with clock.frozen_at(BEFORE_MIDNIGHT), pytest.raises(ValidationError):
        pii.validate_id_number(number)  # still the 15th in the city: born tomorrow
    with clock.frozen_at(AFTER_MIDNIGHT):
        assert pii.validate_id_number(number) == number
        assert _id_number_and_hash(number, b"k")[0] == number  # the ingest's fast path too
    with clock.frozen_at(AFTER_MIDNIGHT), pytest.raises(ValidationError):
        pii.validate_id_number(_id_number("20220717"))
    with clock.frozen_at(AFTER_MIDNIGHT), pytest.raises(ValidationError):
        _id_number_and_hash(_id_number("20220717"), b"k")


def test_the_input_year_window_follows_the_clock_in_city_time(settings):
    settings.INPUT_YEARS_AHEAD = 1
    # 2023-12-31 16:30 UTC is 2024-01-01 00:30 in the city: next year is 2025
    with clock.frozen_at(dt.datetime(2023, 12, 31, 16, 30, tzinfo=UTC)):
        assert inputs.year_window()[1] == 2025
        registry_forms.plausible_date(dt.date(2025, 12, 31))
        with pytest.raises(ValidationError):
            registry_forms.plausible_date(dt.date(2026, 1, 1))
    with clock.frozen_at(dt.datetime(2023, 12, 31, 15, 30, tzinfo=UTC)):
        assert inputs.year_window()[1] == 2024


@pytest.mark.django_db
def test_an_appeal_reference_carries_the_city_date():
    from appeals.services import _reference

    with clock.frozen_at(BEFORE_MIDNIGHT):
        assert _reference().startswith("220715-")
    with clock.frozen_at(AFTER_MIDNIGHT):
        assert _reference().startswith("220716-")


@pytest.mark.django_db
def test_rows_are_stamped_with_the_clock():
    from tests.factories import ResidentFactory

    # given a set clock, when a row with an auto_now_add time is written, then it has the clock's time
    with clock.frozen_at(AFTER_MIDNIGHT):
        resident = ResidentFactory()
    resident.refresh_from_db()
    assert resident.created_at == AFTER_MIDNIGHT


# --- instants shown in city time -----------------------------------------------------------------

def utc_displays(source: str) -> list[tuple[int, str]]:
    """(line, what) for each instant read from a model (an attribute, `obj.raised_at`) written
    with a strftime format as it is, that is in UTC: f"{obj.at:%Y-%m-%d}", obj.at.strftime(...).
    A local variable (a date, a month) or a call (clock.today(), timezone.localtime(x)) is left."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.FormattedValue) and isinstance(node.value, ast.Attribute)
                and node.format_spec is not None and "%" in ast.unparse(node.format_spec)):
            found.append((node.lineno, f"{{{ast.unparse(node.value)}:...}}"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "strftime"
              and isinstance(node.func.value, ast.Attribute)):
            found.append((node.lineno, f"{ast.unparse(node.func.value)}.strftime()"))
    return found


def test_no_product_module_writes_a_stored_instant_in_utc():
    found = [f"{path.relative_to(ROOT)}:{line}: {what}"
             for path in _product_sources() for line, what in utc_displays(path.read_text())]
    assert not found, "write instants in city time (clock.local_text, timezone.localtime):\n" + "\n".join(found)


@pytest.mark.parametrize(("source", "flagged"), [
    ('f"{self.at:%Y-%m-%d}"', True),
    ("p.raised_at.strftime('%Y')", True),
    ("f\"{clock.local_text(self.at, '%Y')}\"", False),
    ('f"{clock.today():%y%m%d}"', False),
    ('f"{birth:%Y%m%d}"', False),
    ("timezone.localtime(x.at).strftime('%H')", False),
])
def test_the_display_walk(source, flagged):
    assert bool(utc_displays(source)) is flagged


@pytest.mark.django_db
def test_a_popup_raised_after_city_midnight_shows_the_city_date():
    from appeals.forms import PopupCategoryForm
    from healthkit.models import PopupCase, Stay
    from tests.factories import PopupCaseFactory
    from tests.factories.healthkit import StayFactory

    # given a popup and a stay at 00:30 city time on 2022-07-16 (16:30 UTC the day before)
    at = dt.datetime(2022, 7, 15, 16, 30, tzinfo=UTC)
    popup = PopupCase.objects.get(pk=PopupCaseFactory(raised_at=at).pk)
    stay = Stay.objects.get(pk=StayFactory(started_at=at, ended_at=None).pk)
    # then the resident's popup choice and the staff's object names show the city date
    form = PopupCategoryForm(popups=[popup])
    assert "2022-07-16" in dict(form.fields["popup"].choices)[str(popup.pk)]
    assert str(stay).endswith("2022-07-16")
