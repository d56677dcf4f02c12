"""What the dashboard page does besides its figures stays cheap and unchanged in output: the
district drop-down comes from the cache (no query of the districts per page) with the options
Django's field would write, a chosen district is still checked against the table, and the panel
tables escape what they show exactly as Django's escape does."""

import pytest
from django import forms
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape as django_escape

from appeals.oversight import views
from appeals.oversight.forms import DashboardFilterForm
from communities.models import District, User
from tests.factories import DistrictFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def districts():
    return [DistrictFactory(code="110108", name="海淀区"), DistrictFactory(code="110105", name="朝阳区 <&>")]


def test_district_options_are_djangos_and_read_once(client, districts):
    # given a supervisor and the page rendered once (which fills the cache)
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    url = reverse("oversight:dashboard")
    assert client.get(url).status_code == 200
    # when the page is rendered again
    with CaptureQueriesContext(connection) as queries:
        html = client.get(url).content.decode()
    # then no query reads the district rows (the figures' names-by-id read is the selectors'), and
    # the drop-down is what Django's field writes (by code)
    assert not [q["sql"] for q in queries.captured_queries if '"communities_district"."name_en"' in q["sql"]]
    field = forms.ModelChoiceField(queryset=District.objects.order_by("code"), required=False, empty_label="全部")
    theirs = forms.Select(choices=field.choices)
    expected = "\n".join(line.strip() for line in theirs.render("district", None, {"id": "id_district"}).splitlines()
                         if line.strip())
    assert DashboardFilterForm().fields["district"].widget.render("district", None, {"id": "id_district"}) == expected
    assert expected in html


def test_chosen_district_is_checked_against_the_table(districts):
    # given the options cached
    DashboardFilterForm()
    # when a district is chosen that is not in the table (any more)
    gone = DistrictFactory(code="110999", name="gone")
    gone_pk = gone.pk
    gone.delete()
    form = DashboardFilterForm({"district": str(gone_pk)})
    # then the form refuses it; an existing one is accepted
    assert not form.is_valid() and "district" in form.errors
    kept = DashboardFilterForm({"district": str(districts[0].pk)})
    assert kept.is_valid() and kept.cleaned_data["district"] == districts[0]


def test_panel_tables_escape_as_django_does():
    # given rows with markup in labels, values and links
    rows = [{"label": '朝阳 <b>"&\'', "cells": [(3, "/console/popups/?a=1&b=<x>"), ("<i>", None)]}]
    # when the table body is written
    html = views._rows_html(rows, 2)
    # then each value is escaped as Django's escape writes it
    assert html == (f'<tr><th scope="row">{django_escape(rows[0]["label"])}</th>'
                    f'<td class="num"><a href="{django_escape("/console/popups/?a=1&b=<x>")}">3</a></td>'
                    f'<td class="num">{django_escape("<i>")}</td></tr>')
