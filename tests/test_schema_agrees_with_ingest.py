"""What the OpenAPI schema promises of a bulk request body is what the endpoint does: for every
field of the batch and of its records (the ingest endpoints, scans and SMS receipts check them
in plain Python, not through the serializers the schema is made from), a sample of edge values
(empty, one character too long, the wrong type, null) is accepted exactly when the schema's
constraints (type, nullable, enum, minLength, maxLength, date-time) accept it."""

import datetime as dt
import itertools
import json

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communities.models import User
from tests.factories import ResidentFactory, UserFactory
from tests.factories.venues import VenueFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)
AGO = (NOW - dt.timedelta(hours=5)).isoformat()
_serial = itertools.count()

# A record each endpoint accepts; {id} is a resident's ID number, {venue} a venue's code.
RECORDS = {
    "/api/v1/ingest/test-results/": {"id_number": "{id}", "lab": "L", "sample_id": "S", "sampled_at": AGO,
                                     "resulted_at": AGO, "result": "negative"},
    "/api/v1/ingest/arrivals/": {"id_number": "{id}", "arrived_at": AGO, "from_county": "310115"},
    "/api/v1/ingest/stays/": {"id_number": "{id}", "county": "310115", "from": AGO},
    "/api/v1/ingest/quarantine-orders/": {"id_number": "{id}", "from": AGO, "to": NOW.isoformat()},
    "/api/v1/ingest/medical-events/": {"id_number": "{id}", "kind": "clinic_visit", "symptom": "fever",
                                       "occurred_at": AGO},
    "/api/v1/ingest/popup-assignments/": {"id_number": "{id}", "popup_type": 3, "reason": "match",
                                          "assigned_at": AGO},
    "/api/v1/ingest/local-cases/": {"county": "310115", "date": NOW.date().isoformat()},
    "/api/v1/venues/scans/": {"id_number": "{id}", "venue": "{venue}", "scanned_at": AGO},
}
# Fields whose good value depends on the record's others (a unique key per record).
UNIQUE = {"sample_id", "record_id"}
# Rules the schema states in words (help texts): one of these fields is required. A local case
# has a date or reported_at; a clinic visit (the record above) needs its symptom.
REQUIRED_IN_WORDS = {"/api/v1/ingest/local-cases/": [("date", "reported_at")],
                     "/api/v1/ingest/medical-events/": [("symptom",)]}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in node and len(node["allOf"]) == 1:
        return {**_resolve(schema, node["allOf"][0]), **{k: v for k, v in node.items() if k != "allOf"}}
    return node


def _is_instant(value: str) -> bool:
    try:
        return dt.datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def schema_accepts(prop: dict, value, resolve=lambda node: node) -> bool:
    """The schema's verdict on one value of one property (the constraints drf-spectacular emits)."""
    prop = resolve(prop)
    if value is None and prop.get("nullable"):
        return True
    if "oneOf" in prop:
        return any(schema_accepts(option, value, resolve) for option in prop["oneOf"])
    if value is None:
        return None in prop.get("enum", [])
    if "enum" in prop:
        return value in prop["enum"]
    kind = prop.get("type")
    if kind == "string":
        if not isinstance(value, str):
            return False
        if not prop.get("minLength", 0) <= len(value) <= prop.get("maxLength", 10**9):
            return False
        if prop.get("format") == "date-time":
            return _is_instant(value)
        if prop.get("format") == "date":
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                return False
        return True
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    raise AssertionError(f"no rule for {prop}")


def edge_values(prop: dict) -> list:
    values = [None, "", 12345, True]
    if prop.get("maxLength"):
        values.append("7" * (prop["maxLength"] + 1))
    return values


def _cases(schema):
    for path, good in RECORDS.items():
        body = _resolve(schema, schema["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"])
        record = _resolve(schema, body["properties"]["records"]["items"])
        for name, prop in body["properties"].items():
            if name != "records":
                for value in edge_values(_resolve(schema, prop)):
                    yield path, None, name, _resolve(schema, prop), value
        for name, prop in record["properties"].items():
            prop = _resolve(schema, prop)
            for value in edge_values(prop):
                yield path, good, name, prop, value


def _client():
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(
        user=UserFactory(role=User.Role.INTEGRATION)).key)
    return client


def _fill(record: dict) -> dict:
    n = next(_serial)
    filled = {}
    for key, value in record.items():
        if value == "{id}":
            value = ResidentFactory().reveal_id_number()
        elif value == "{venue}":
            value = VenueFactory().code
        elif key in UNIQUE:
            value = f"{value}-{n}"
        filled[key] = value
    return filled


def test_every_field_of_every_bulk_body_accepts_what_the_schema_accepts(schema):
    # given every field of every bulk body the schema describes, each with a sample of edge values
    client = _client()
    disagree = []
    for path, good, name, prop, value in _cases(schema):
        if good is None:  # a field of the batch itself
            body = {name: value, "records": [_fill(RECORDS[path])]}
        else:
            record = {**_fill(good), name: value}
            body = {"batch_id": f"b-{next(_serial)}", "records": [record]}
        # when the endpoint gets it
        response = client.post(path, data=json.dumps(body), content_type="application/json")
        assert response.status_code in (200, 400), (path, name, value, response.content)
        accepted = response.status_code == 200 and not response.json()["rejected"]
        # then it takes the value exactly when the schema says it may
        promised = schema_accepts(prop, value, lambda node: _resolve(schema, node))
        for fields in REQUIRED_IN_WORDS.get(path, []) if good is not None else []:
            promised = promised and any(record.get(field) is not None for field in fields)
        if accepted != promised:
            disagree.append(f"{path} {name}={value!r}: schema {'accepts' if not accepted else 'refuses'}, "
                            f"endpoint {'accepts' if accepted else 'refuses'}")
    assert not disagree, "\n".join(disagree)
