"""No address carries an ID number or a phone number (the guide: no personal data in URLs, logs or
error messages). Browser history, shared screens, bookmarks, proxies and access logs keep
addresses, so:

- no GET form of any page, no filter set and no API query parameter of the schema is a
  personal-data field (look-ups by ID number or phone are POSTs);
- a query string holding one anyway (typed into a free-text filter box such as the queue's
  reference, passed on in a `from=` or `next=`) is never answered, on every page and API list
  of the role matrix: a page leads to the same address without it, the API answers 400, and
  the value is never echoed (healthkit.middleware.PersonalDataAddressMiddleware).

Before, the queue answered ?reference=<a phone> with the phone back in its filter box, in every
ticket link's `from=`, and in the API list's `next` link."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from drf_spectacular.generators import SchemaGenerator

from tests.test_query_string_fuzz import PARAMS, _GetFormFields
from tests.test_url_role_matrix import MATRIX, ROLES, _url, client_for, world  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

# A field that carries a person's identity or contact: never in an address.
PERSONAL_FIELD = re.compile(r"(?i)(id_?number|id_?card|identity|phone|mobile|^name$|_name$|^name_|surname|passport)")
ID_NUMBER = "110105198001011234"
PHONES = ("13800138000", "+86 13912345678")


def _filter_sets_and_forms():
    """Every GET form class and filter set the project's views and APIs read from a query string."""
    from appeals.clearance.api import ClearanceTaskListApi
    from appeals.clearance.forms import WorklistFilterForm
    from appeals.filters import AppealFilter
    from appeals.oversight.forms import DashboardFilterForm
    from healthkit.forms import PopupListFilterForm
    from venues.forms import RegisterRangeForm, VenueSearchForm

    yield "AppealFilter", list(AppealFilter.base_filters)
    for form in (WorklistFilterForm, DashboardFilterForm, PopupListFilterForm, RegisterRangeForm, VenueSearchForm):
        yield form.__name__, list(form.base_fields)
    yield "ClearanceTaskListApi.FilterSerializer", list(ClearanceTaskListApi.FilterSerializer().fields)


def test_no_filter_set_or_get_form_class_has_a_personal_data_field():
    found = [f"{owner}.{name}" for owner, names in _filter_sets_and_forms() for name in names
             if PERSONAL_FIELD.search(name)]
    assert not found, found


def test_no_api_query_parameter_is_a_personal_data_field():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    params, found = 0, []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                params += 1
                if PERSONAL_FIELD.search(parameter["name"]):
                    found.append(f"{method.upper()} {path} ?{parameter['name']}")
    assert params > 10 and not found, found


def _pages(world):  # noqa: F811 - the matrix's fixture
    """Each page and API list of the matrix once, as the first role that may open it."""
    for name, (key, expected) in MATRIX.items():
        role = next((r for r in ROLES if expected[r] == 200), None)
        if name == "admin:*" or role is None:
            continue
        yield name, role, _url(name, world, key, role)


def test_no_page_or_api_list_answers_an_address_holding_an_id_number_or_a_phone(world):  # noqa: F811
    clients = {role: client_for(role, world) for role in ROLES}
    failures, tried = [], 0
    for name, role, url in _pages(world):
        client = clients[role]
        page = client.get(url)
        fields = _GetFormFields()
        if "html" in page.get("Content-Type", ""):
            fields.feed(page.content.decode())
        for field in dict.fromkeys([*fields.names, *PARAMS, "next"]):
            if field in ("api_key",):
                continue
            for value in (ID_NUMBER, *PHONES):
                tried += 1
                answer = client.get(url, {field: value})
                shown = answer.content.decode(errors="replace") + answer.get("Location", "")
                digits = value.split()[-1]
                if answer.status_code not in (302, 400) or digits in shown:
                    failures.append(f"{role} {name} ?{field}=<{'ID' if value == ID_NUMBER else 'phone'}>: "
                                    f"{answer.status_code}{' (echoed)' if digits in shown else ''}")
                    break
    assert tried > 1000
    assert not failures, "\n".join(failures[:40])


def test_a_filter_box_holding_a_phone_leads_back_to_the_queue_without_it(world):  # noqa: F811
    client = client_for("operator", world)
    answer = client.get("/console/appeals/", {"queue": "all", "reference": "13800138000", "category": "correction"})
    assert answer.status_code == 302
    assert answer["Location"] == "/console/appeals/?queue=all&category=correction"
    assert "Find by exact ID number or phone" in str(list(get_messages(answer.wsgi_request))[0])
    assert client.get(answer["Location"]).status_code == 200
    api = client.get("/api/v1/appeals/", {"reference": ID_NUMBER})
    assert api.status_code == 400 and ID_NUMBER not in api.content.decode()
    assert "POST /api/v1/appeals/search/" in api.json()["detail"]
    # a form sent (POST) to an address holding one is refused too, not run
    assert client.post("/console/appeals/?from=reference%3D13800138000", {}).status_code == 400


def test_the_page_script_stops_a_get_form_holding_one_before_it_is_sent():
    """site.js's pattern is the server's (healthkit.logfilters), so the browser never makes the
    address the server would refuse."""
    from pathlib import Path

    from healthkit.logfilters import holds_personal_data

    script = (Path(__file__).resolve().parents[1] / "healthkit/static/healthkit/site.js").read_text()
    pattern = re.search(r"var PERSONAL_DATA = /(.+)/;", script).group(1).replace("\\\\", "\\")
    js = re.compile(pattern)
    for text in (ID_NUMBER, "11010519800101123X", *PHONES, "call 13800138000", "8613800138000"):
        assert bool(js.search(text)) == holds_personal_data(text), text
    for text in ("260101-ABCDEFG", "2026-12-01", "13800", "99999999999999999999", "A2211000001"):
        assert not js.search(text) and not holds_personal_data(text), text
    assert "keepPersonalDataOutOfAddress" in script
