"""The one input boundary (healthkit.inputs): every case the outside review found answering 500
is now a field error naming the record and field (or, for search boxes, the characters dropped),
and nothing of a refused record is stored."""

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from appeals.models import Appeal
from communities.models import Resident, User
from healthkit import inputs
from healthkit.models import Arrival, LocalCase, PopupAssignment, TestResult
from tests.factories import ResidentFactory, UserFactory, make_id_number
from tests.factories.appeals import AppealFactory
from tests.factories.venues import VenueFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)
AGO = (NOW - dt.timedelta(hours=5)).isoformat()
BAD_OFFSET = (NOW - dt.timedelta(hours=5)).replace(tzinfo=None).isoformat() + "+16:00"
NUL, SURROGATE = "\x00", "\ud800"
ENDPOINTS = {
    "api-ingest-test-results": {"lab": "L", "sample_id": "S1", "sampled_at": AGO, "resulted_at": AGO, "result": "negative"},
    "api-ingest-arrivals": {"arrived_at": AGO, "from_county": "310115"},
    "api-ingest-stays": {"county": "310115", "from": AGO},
    "api-ingest-quarantine-orders": {"from": AGO, "to": NOW.isoformat()},
    "api-ingest-medical-events": {"kind": "clinic_visit", "symptom": "fever", "occurred_at": AGO},
    "api-ingest-popup-assignments": {"popup_type": 3, "reason": "match", "assigned_at": AGO},
}
INSTANT_FIELDS = {"api-ingest-test-results": "sampled_at", "api-ingest-arrivals": "arrived_at",
                  "api-ingest-stays": "from", "api-ingest-quarantine-orders": "from",
                  "api-ingest-medical-events": "occurred_at", "api-ingest-popup-assignments": "assigned_at"}


def integration():
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    user = UserFactory(role=User.Role.INTEGRATION)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def post_json(client, url, body):
    """The body as a client's JSON encoder writes it: NUL and lone surrogates as \\u escapes."""
    return client.post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def person():
    return ResidentFactory(id_number=make_id_number())


def number(resident):
    return resident.reveal_id_number()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("bad", [NUL, SURROGATE, "\x07", "\u202e", "\u2067"])  # + bidi override, isolate
def test_control_characters_in_any_text_field_are_a_field_error_of_that_record(endpoint, bad, person):
    good = {"id_number": number(person), **ENDPOINTS[endpoint]}
    text_fields = [f for f in ("lab", "sample_id", "reason") if f in good] + ["name"]
    text_fields += ["record_id"] if "lab" not in good else []
    records = [good]
    for i, field in enumerate(text_fields, start=1):
        record = {**good, "record_id": f"r{i}"}
        if "sample_id" in good:
            record["sample_id"] = f"S{i + 1}"
        record[field] = f"x{bad}y"
        records.append(record)
    response = post_json(integration(), reverse(endpoint), {"records": records})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], list(r["errors"])) for r in body["rejected"]] == [
        (i, [field]) for i, field in enumerate(text_fields, start=1)]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_nul_or_surrogate_in_batch_id_is_a_400_naming_it(endpoint, person):
    for bad in (NUL, SURROGATE):
        response = post_json(integration(), reverse(endpoint), {"batch_id": f"b{bad}", "records": []})
        assert response.status_code == 400
        assert "batch_id" in json.dumps(response.json())


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_offsets_postgresql_cannot_store_and_implausible_years_are_field_errors(endpoint, person):
    field = INSTANT_FIELDS[endpoint]
    good = {"id_number": number(person), **ENDPOINTS[endpoint]}
    records = [{**good, field: BAD_OFFSET}, {**good, field: "0001-01-01T00:00:00+08:00"},
               {**good, field: "9999-12-31T23:59:59-15:00"}, {**good, field: AGO.replace("+00:00", "")}]
    body = post_json(integration(), reverse(endpoint), {"records": records}).json()
    assert [(r["index"], list(r["errors"])) for r in body["rejected"]] == [(i, [field]) for i in range(4)]
    assert body["accepted"] == 0


def test_local_cases_refuse_year_0001_and_normalise_full_width_counties():
    records = [{"county": "310115", "date": "0001-01-01"}, {"county": "310115", "reported_at": BAD_OFFSET},
               {"county": "１１０１０５", "date": NOW.date().isoformat()}, {"county": "11010５x", "date": NOW.date().isoformat()}]
    body = post_json(integration(), reverse("api-ingest-local-cases"), {"records": records}).json()
    assert [(r["index"], list(r["errors"])) for r in body["rejected"]] == [
        (0, ["date"]), (1, ["reported_at"]), (3, ["county"])]
    assert list(LocalCase.objects.values_list("county", flat=True)) == ["110105"]


def test_wrong_json_types_are_field_errors(person):
    good = {"id_number": number(person), "arrived_at": AGO, "from_county": "310115"}
    records = [{**good, "record_id": True}, {**good, "from_county": {"a": 1}}, {**good, "arrived_at": 1669800000},
               {**good, "name": ["x"]}, [good], {**good, "record_id": 7}]
    body = post_json(integration(), reverse("api-ingest-arrivals"), {"records": records}).json()
    assert [(r["index"], list(r["errors"])) for r in body["rejected"]] == [
        (0, ["record_id"]), (1, ["from_county"]), (2, ["arrived_at"]), (3, ["name"]), (4, ["record"])]
    assert Arrival.objects.count() == 1


def test_names_over_the_column_length_are_refused_not_cut():
    fresh = make_id_number()
    record = {"id_number": fresh, "name": "王" * 65, "arrived_at": AGO, "from_county": "310115"}
    body = post_json(integration(), reverse("api-ingest-arrivals"), {"records": [record]}).json()
    assert body["rejected"] == [{"index": 0, "errors": {"name": "At most 64 characters."}}]
    assert not Resident.objects.exists()


def test_scans_refuse_bad_text_offsets_and_years_per_record(person):
    venue = VenueFactory()
    good = {"id_number": number(person), "venue": venue.code, "scanned_at": AGO}
    records = [good, {**good, "venue": f"{venue.code}{NUL}"}, {**good, "scanned_at": BAD_OFFSET},
               {**good, "scanned_at": "0001-01-01T00:00:00+00:00"}, {**good, "name": SURROGATE},
               {**good, "venue": {"code": venue.code}}]
    response = post_json(integration(), reverse("venues:api-scans"), {"records": records})
    body = response.json()
    assert response.status_code == 200 and body["accepted"] == 1
    assert [(r["index"], list(r["errors"])) for r in body["rejected"]] == [
        (1, ["venue"]), (2, ["scanned_at"]), (3, ["scanned_at"]), (4, ["name"]), (5, ["venue"])]


def test_sms_receipts_refuse_objects_offsets_and_control_characters():
    receipts = [{"id": "m1", "status": {"x": 1}}, {"id": "m2", "status": "delivered", "at": BAD_OFFSET},
                {"id": f"m{NUL}", "status": "delivered"}, {"id": "m4", "status": ["delivered"]},
                {"id": "m5", "status": "undelivered", "error": SURROGATE}]
    response = post_json(integration(), reverse("api-sms-receipts"), {"receipts": receipts})
    assert response.status_code == 400  # NUL and the surrogate: refused at the body, naming where
    assert "receipts.2.id" in json.dumps(response.json()) or "receipts.4.error" in json.dumps(response.json())
    body = post_json(integration(), reverse("api-sms-receipts"), {"receipts": receipts[:2] + receipts[3:4]}).json()
    assert [(r["index"], list(r["errors"])) for r in body["rejected"]] == [(0, ["status"]), (1, ["at"]), (2, ["status"])]


@pytest.fixture
def operator_client(client):
    client.force_login(UserFactory(role=User.Role.OPERATOR))
    return client


def test_query_strings_drop_control_characters_and_paths_with_them_are_400(client, operator_client):
    assert client.get("/api/v1/communities/find/", {"q": "望京\x00西园"}).status_code == 200
    appeal = AppealFactory()
    assert operator_client.get(f"/api/v1/appeals/{appeal.reference}/").status_code == 200
    assert operator_client.get(f"/api/v1/appeals/{appeal.reference}%00/").status_code == 400
    assert operator_client.get("/api/v1/appeals/" + "Ａ" * 30 + "/").status_code == 404  # no reference
    response = operator_client.get("/console/appeals/", {"queue": "all", "reference": f"{appeal.reference}\x00"})
    assert response.status_code == 200 and appeal.reference in response.content.decode()


def test_open311_api_key_form_fields_names_and_dates(client):
    key = Token.objects.create(user=UserFactory(role=User.Role.INTEGRATION)).key
    form = {"api_key": key, "service_code": "correction", "first_name": "小明", "last_name": "王",
            "phone": "13600009999", "attribute[id_number]": make_id_number(), "attribute[popup_type]": "3",
            "address_string": "朝阳区望京西园三区", "description": "wrong popup"}
    assert client.post("/open311/v2/requests.json", form | {"api_key": f"{key}\x00"}).status_code == 403
    for field in ("address_string", "first_name", "phone", "attribute[id_number]", "description"):
        response = client.post("/open311/v2/requests.json", form | {field: "a\x00b"})
        assert response.status_code == 400 and field in response.json()[0]["description"], field
    response = client.post("/open311/v2/requests.json", form | {"first_name": "明" * 64})
    assert response.status_code == 400 and "64" in response.json()[0]["description"]
    assert not Appeal.objects.exists()
    listing = client.get("/open311/v2/requests.json", {"end_date": "0001-01-01T00:00:00Z"},
                         HTTP_AUTHORIZATION=f"Token {key}")
    assert listing.status_code == 400


def test_a_surrogate_does_not_break_the_debug_page(settings, person):
    settings.DEBUG = True
    response = post_json(integration(), reverse("api-ingest-popup-assignments"),
                         {"records": [{"id_number": number(person), "popup_type": 3, "reason": SURROGATE,
                                       "assigned_at": AGO}]})
    assert response.status_code == 200 and response.json()["rejected"][0]["errors"] == {
        "reason": "Contains control characters or invalid Unicode."}
    assert not PopupAssignment.objects.exists()
    response = post_json(integration(), reverse("api-sms-receipts"), {"receipts": [{"id": SURROGATE}]})
    assert response.status_code == 400 and response.json()["extra"] == {"field": "receipts.0.id"}


def test_results_with_a_bad_record_store_the_good_ones_only(person):
    good = {"id_number": number(person), **ENDPOINTS["api-ingest-test-results"]}
    body = post_json(integration(), reverse("api-ingest-test-results"),
                     {"records": [good, {**good, "sample_id": "S2", "lab": NUL}]}).json()
    assert body["accepted"] == 1 and TestResult.objects.count() == 1


@pytest.mark.parametrize(("value", "ok"), [
    ("2022-11-20T08:00:00+08:00", True), ("2022-11-20T08:00:00+15:59", True), ("2022-11-20T08:00:00+16:00", False),
    ("2022-11-20T08:00:00-16:00", False), ("2022-11-20T08:00:00", False), ("0001-01-01T00:00:00+00:00", False),
    ("9999-12-31T23:59:59+00:00", False), ("２０２２-11-20T08:00:00+08:00", False), (20221120, False), (None, False)])
def test_instant_parser(value, ok):
    if ok:
        assert inputs.instant(value).tzinfo is not None
    else:
        with pytest.raises(inputs.InputError):
            inputs.instant(value)


@pytest.mark.parametrize("value", ["abc", "99999999999999999999999", "-1", "１２", "1\x00"])
def test_keys_from_forms_and_query_strings_find_nothing_instead_of_failing(operator_client, value):
    assert inputs.key(value) in (0, 12)
    # the popup list's cursor: a positive number of ASCII digits (a NUL is dropped first), else refused
    response = operator_client.get("/console/popups/", {"before": value})
    assert response.status_code == (200 if value == "1\x00" else 400)


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_dates_outside_the_window_are_form_errors_not_overflows(client, day):
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    audit = client.post("/console/audit/", {"until": day, "since": day})
    assert audit.status_code == 200 and audit.context["form"].errors.keys() >= {"since", "until"}
    dashboard = client.get("/console/dashboard/", {"date_to": day})
    assert dashboard.status_code == 400 and "date_to" in dashboard.context["form"].errors


@pytest.mark.parametrize("url", [reverse("api-ingest-arrivals"), reverse("api-sms-receipts")])
@pytest.mark.parametrize(("body", "says"), [
    (b'{"records": [' + b"[" * 50000 + b"]" * 50000 + b"]}", "nested too deeply"),
    (b'{"records": [' + b'{"a": ' * 50000 + b"1" + b"}" * 50000 + b"]}", "nested too deeply"),
    (b'{"records": [{"name": "\xff\xfe"}]}', "character set"),
    (b'{"records": [1, 2,]}', "(line 1, column 19)"),
    (b'{"records": [' + b"9" * 5000 + b"]}", "not valid JSON"),
])
def test_a_malformed_body_is_a_400_saying_why_without_quoting_python(url, body, says):
    # given a body nested deeper than Python's recursion limit, not UTF-8, or not JSON
    response = integration().post(url, data=body, content_type="application/json")
    # then a 400 {"detail"} in the reader's words, no 500 and no codec or sys.* internals
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert says in detail
    assert "codec" not in detail and "sys." not in detail and "JSON parse error" not in detail


@pytest.mark.parametrize("bidi", ["\u202a", "\u202b", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"])
def test_bidirectional_overrides_are_refused_in_text_and_forms_and_dropped_from_searches(bidi):
    # given a name or a note that would show the text after it reversed on a console page
    with pytest.raises(inputs.InputError):
        inputs.text(f"王{bidi}某", max_length=64)
    with pytest.raises(inputs.InputError):
        inputs.text(f"line one\nline{bidi} two", max_length=200, multiline=True)
    assert inputs.TextFormField(max_length=64).clean("王某") == "王某"
    from django import forms
    with pytest.raises(forms.ValidationError):
        inputs.TextFormField(max_length=64).clean(f"王{bidi}某")
    # a search box keeps what is printable
    assert inputs.SearchFormField().clean(f"王{bidi}某") == "王某"


@pytest.mark.parametrize("county", ["1" * 25, "1" * 100_000])
def test_an_over_long_county_is_told_it_is_a_6_digit_code(county, person):
    # given an arrival whose county is far longer than a code
    record = {"id_number": number(person), **ENDPOINTS["api-ingest-arrivals"], "from_county": county}
    body = post_json(integration(), reverse("api-ingest-arrivals"), {"records": [record]}).json()
    # then the record's error says what a county is, not a character count of 24
    assert body["rejected"] == [{"index": 0, "errors": {"from_county": "A county is its 6-digit administrative division code."}}]
    with pytest.raises(inputs.InputError, match="Must be 6 digits"):
        inputs.code(county, length=6)


def test_the_replacement_character_is_refused_as_invalid_unicode():
    # U+FFFD is what a decoder leaves of bytes that were not text: stored, nobody can read it
    with pytest.raises(inputs.InputError):
        inputs.text("王\ufffd\ufffd", max_length=64)
    with pytest.raises(inputs.InputError):
        inputs.text("地址\n\ufffd", max_length=200, multiline=True)
    assert inputs.SearchFormField().clean("王\ufffd某") == "王某"
