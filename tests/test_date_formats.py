"""Dates and times read the same on every staff and resident page, in both languages: a
date-time printed without a format shows the language's long form ("Dec. 1, 2026, 11:23 a.m."
in English, "2026年12月1日 11:23" in Chinese) beside pages that print "2026-12-01 11:23". Every
template prints a model's date or time through `|date:"Y-m-d ..."`."""

import re
from pathlib import Path

import pytest
from django.utils import timezone

from communities.models import PersonalDataAccess, User
from communities.services import access_log
from tests.factories import ResidentFactory, UserFactory

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
# A variable naming a date-time (…_at, .at) printed bare or through filters other than |date.
BARE = re.compile(r"\{\{\s*([\w.]+(?:_at|\.at))\s*((?:\|[^}|]+)*)\}\}")


def test_every_template_formats_the_date_times_it_prints():
    bare = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in BARE.finditer(line):
                if "|date:" not in match.group(2):
                    bare.append(f"{path.relative_to(TEMPLATES)}:{number}: {match.group(0)}")
    assert bare == []


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_audit_page_prints_its_times_as_every_other_page_does(client, language):
    supervisor = UserFactory(role=User.Role.SUPERVISOR)
    access_log(actor=supervisor, resident=ResidentFactory(), action=PersonalDataAccess.Action.VIEW, context="test")
    client.force_login(supervisor)
    page = client.get("/console/audit/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert timezone.localtime().strftime("%Y-%m-%d %H:") in page
