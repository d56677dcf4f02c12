"""Property-based proof of the input boundary (hypothesis): arbitrary text (NUL, controls, lone
surrogates), instants (any year, any offset a client can write) and JSON shapes thrown at each
parser of healthkit.inputs and at each endpoint family (ingest of every kind, scans, SMS
receipts, Open311 filing, REST appeals, query strings, path parameters). Always: never a 5xx;
rejected records named by index and field; good records kept; nothing of a refused request or
record stored. Bounded and repeatable: few examples, derandomized (a fixed seed)."""

import datetime as dt
import json
import uuid
from urllib.parse import quote

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from appeals.models import Appeal
from communities.models import User
from healthkit import inputs
from healthkit.models import (
    Arrival,
    LocalCase,
    MedicalEvent,
    PopupAssignment,
    QuarantineOrder,
    Stay,
    TestResult,
)
from tests.factories import ResidentFactory, UserFactory
from tests.factories.venues import VenueFactory
from venues.models import VenueScan

pytestmark = pytest.mark.django_db
_CHECKS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
# Derandomized (a fixed seed: the same examples every run), no example database, no deadline
# (a loaded CI machine); parsers are cheap, each endpoint example is one request.
PARSER = settings(max_examples=60, derandomize=True, deadline=None, database=None, suppress_health_check=_CHECKS)
BOUNDED = settings(max_examples=12, derandomize=True, deadline=None, database=None, suppress_health_check=_CHECKS)

# Any code point, lone surrogates and NUL included (hypothesis leaves surrogates out by default).
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=70)
FORM_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=70)  # what a form can carry
OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1)


@st.composite
def iso_instants(draw) -> str:
    """ISO 8601 text any client could write: any year 0001-9999, offsets up to ±23:59, or naive."""
    moment = draw(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)))
    offset = draw(st.none() | OFFSETS)
    if offset is None:
        return moment.isoformat()
    sign, minutes = ("+" if offset >= 0 else "-"), abs(offset)
    return f"{moment.isoformat()}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(10**20), max_value=10**20)
           | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT | iso_instants())
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(ANY_TEXT, inner, max_size=3), max_leaves=6)


def integration() -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    user = UserFactory(role=User.Role.INTEGRATION)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def post_json(client, url, body):
    return client.post(url, data=json.dumps(body), content_type="application/json")


# --- the parsers ---------------------------------------------------------------------------------

@PARSER
@given(value=JSON_VALUES, max_length=st.integers(min_value=1, max_value=80))
def test_text_is_refused_or_clean_storable_and_never_cut(value, max_length):
    try:
        out = inputs.text(value, max_length=max_length, required=False, allow_int=True)
    except inputs.InputError as exc:
        assert exc.message
        return
    assert isinstance(out, str) and len(out) <= max_length and not inputs.has_bad_characters(out)
    out.encode("utf-8")  # no lone surrogate
    assert out == "" or out in (value if isinstance(value, str) else str(value))


@PARSER
@given(value=iso_instants() | JSON_VALUES)
def test_instants_are_refused_or_aware_storable_and_in_the_window(value):
    try:
        out = inputs.instant(value, required=False)
    except inputs.InputError as exc:
        assert exc.message
        return
    if out is None:
        return
    first, last = inputs.year_window()
    assert out.tzinfo is not None and first <= out.year <= last
    assert abs(out.utcoffset()) <= dt.timedelta(hours=15, minutes=59)
    out.astimezone(dt.UTC)  # no OverflowError can escape later arithmetic


@PARSER
@given(value=JSON_VALUES | st.text(alphabet="0123456789０１２３４５６７８９٠١٢", max_size=8))
def test_codes_are_refused_or_six_ascii_digits(value):
    try:
        out = inputs.code(value, length=6)
    except inputs.InputError:
        return
    assert len(out) == 6 and out.isascii() and out.isdigit()


@PARSER
@given(value=JSON_VALUES)
def test_integers_and_booleans_keep_their_json_types(value):
    try:
        out = inputs.integer(value, required=False)
        assert out is None or type(out) is int
    except inputs.InputError:
        assert value is not None and value != ""
    try:
        assert inputs.boolean(value) in (True, False)
    except inputs.InputError:
        assert not any(value is allowed for allowed in (True, False, None))  # 0 and 1.0 are not booleans


# --- every ingest endpoint -----------------------------------------------------------------------

AGO = (timezone.now() - dt.timedelta(hours=5)).replace(microsecond=0).isoformat()
KINDS = {
    "api-ingest-test-results": (TestResult, lambda: {
        "lab": "L", "sample_id": uuid.uuid4().hex, "sampled_at": AGO, "resulted_at": AGO, "result": "negative"}),
    "api-ingest-arrivals": (Arrival, lambda: {"arrived_at": AGO, "from_county": "310115", "record_id": uuid.uuid4().hex}),
    "api-ingest-stays": (Stay, lambda: {"county": "310115", "from": AGO, "record_id": uuid.uuid4().hex}),
    "api-ingest-local-cases": (LocalCase, lambda: {"county": "310115", "reported_at": AGO, "record_id": uuid.uuid4().hex}),
    "api-ingest-quarantine-orders": (QuarantineOrder, lambda: {
        "from": AGO, "to": timezone.now().isoformat(), "record_id": uuid.uuid4().hex}),
    "api-ingest-medical-events": (MedicalEvent, lambda: {
        "kind": "clinic_visit", "symptom": "fever", "occurred_at": AGO, "record_id": uuid.uuid4().hex}),
    "api-ingest-popup-assignments": (PopupAssignment, lambda: {
        "popup_type": 3, "reason": "match", "assigned_at": AGO, "record_id": uuid.uuid4().hex}),
}


@st.composite
def batches(draw, fields: list[str]):
    """[(mutated field or None, value)] for 1-4 records: some untouched, some with one field (or a
    new one, or the whole record) replaced by an arbitrary JSON value."""
    plan = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if draw(st.booleans()):
            plan.append((None, None))
        else:
            field = draw(st.sampled_from([*fields, "name", "record_id", "id_number", "<record>"]))
            plan.append((field, draw(JSON_VALUES)))
    return plan


def check_batch(response, records, untouched: list[int], stored_before: int, stored_now: int) -> None:
    assert response.status_code < 500, response.content[:300]
    if response.status_code != 200:
        assert stored_now == stored_before  # a refused request stores nothing
        return
    body = response.json()
    assert body["received"] == len(records)
    rejected = {r["index"] for r in body["rejected"]}
    for entry in body["rejected"]:
        assert 0 <= entry["index"] < len(records)
        assert entry["errors"] and all(isinstance(name, str) and message for name, message in entry["errors"].items())
    assert not rejected & set(untouched)  # good records kept
    kept = body["accepted"] + body.get("corrected", 0)
    assert kept + body["duplicates"] + body.get("updated", 0) + len(rejected) == len(records)
    assert stored_now - stored_before == kept  # nothing partial: what is stored is what is counted


@pytest.mark.parametrize("endpoint", KINDS)
def test_every_ingest_endpoint_survives_arbitrary_records(endpoint):
    model, good = KINDS[endpoint]
    client = integration()
    number = ResidentFactory().reveal_id_number()
    has_resident = endpoint != "api-ingest-local-cases"

    @BOUNDED
    @given(plan=batches(list(good())))
    def run(plan):
        records, untouched = [], []
        for index, (field, value) in enumerate(plan):
            record = {"id_number": number, **good()} if has_resident else good()
            if field is None:
                untouched.append(index)
            elif field == "<record>":
                record = value
            else:
                record[field] = value
            records.append(record)
        before = model.objects.count()
        response = post_json(client, reverse(endpoint), {"records": records})
        check_batch(response, records, untouched, before, model.objects.count())

    run()


def test_scans_survive_arbitrary_records():
    client = integration()
    number, venue = ResidentFactory().reveal_id_number(), VenueFactory()

    @BOUNDED
    @given(plan=batches(["venue", "scanned_at"]))
    def run(plan):
        records, untouched = [], []
        for index, (field, value) in enumerate(plan):
            scanned = (timezone.now() - dt.timedelta(minutes=index + 1, seconds=len(records))).isoformat()
            record = {"id_number": number, "venue": venue.code, "scanned_at": scanned}
            if field is None:
                untouched.append(index)
                record["scanned_at"] = (timezone.now() - dt.timedelta(microseconds=uuid.uuid4().int % 10**9)).isoformat()
            elif field == "<record>":
                record = value
            else:
                record[field] = value
            records.append(record)
        before = VenueScan.objects.count()
        response = post_json(client, reverse("venues:api-scans"), {"records": records})
        check_batch(response, records, untouched, before, VenueScan.objects.count())

    run()


@BOUNDED
@given(body=JSON_VALUES | st.fixed_dictionaries({"records": JSON_VALUES, "batch_id": JSON_VALUES}),
       endpoint=st.sampled_from([*KINDS, "api-sms-receipts", "venues:api-scans"]))
def test_any_json_body_on_a_bulk_endpoint_is_a_200_or_a_400(body, endpoint):
    response = post_json(integration(), reverse(endpoint), body)
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        assert set(response.json()) == {"detail", "code", "errors", "extra"}


@BOUNDED
@given(receipts=st.lists(st.fixed_dictionaries({"id": JSON_VALUES, "status": JSON_VALUES},
                                                optional={"at": iso_instants() | JSON_VALUES, "error": JSON_VALUES}),
                         max_size=4))
def test_sms_receipts_survive_arbitrary_receipts(receipts):
    response = post_json(integration(), reverse("api-sms-receipts"), {"receipts": receipts})
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 200:
        for entry in response.json()["rejected"]:
            assert 0 <= entry["index"] < len(receipts) and entry["errors"]


# --- Open311, REST appeals, query strings, path parameters ---------------------------------------

OPEN311_FIELDS = ["api_key", "service_code", "first_name", "last_name", "phone", "attribute[id_number]",
                  "attribute[popup_type]", "attribute[outside_since]", "address_string", "description", "lat", "long"]


def test_open311_filing_survives_arbitrary_form_fields(client):
    key = Token.objects.create(user=UserFactory(role=User.Role.INTEGRATION)).key

    @BOUNDED
    @given(form=st.fixed_dictionaries({}, optional=dict.fromkeys(OPEN311_FIELDS, FORM_TEXT)),
           end_date=FORM_TEXT | iso_instants())
    def run(form, end_date):
        before = Appeal.objects.count()
        response = client.post("/open311/v2/requests.json", {"api_key": key, "service_code": "correction"} | form)
        assert response.status_code < 500, response.content[:300]
        assert Appeal.objects.count() == before + (response.status_code == 201)
        listing = client.get("/open311/v2/requests.json", {"end_date": end_date}, HTTP_AUTHORIZATION=f"Token {key}")
        assert listing.status_code in (200, 400)

    run()


def test_rest_appeals_survive_arbitrary_bodies_query_strings_and_references():
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(UserFactory(role=User.Role.OPERATOR))

    @BOUNDED
    @given(body=JSON_VALUES, text=FORM_TEXT,
           endpoint=st.sampled_from(["appeals:api-create", "appeals:api-search"]))
    def run(body, text, endpoint):
        assert post_json(api, reverse(endpoint), body).status_code < 500
        assert api.get("/api/v1/appeals/", {"reference": text, "community": text}).status_code < 500
        assert api.get(f"/api/v1/appeals/{quote(text, safe='') or 'x'}/").status_code < 500
        assert api.get("/api/v1/communities/find/", {"q": text}).status_code < 500

    run()
