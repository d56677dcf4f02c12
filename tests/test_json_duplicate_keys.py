"""A JSON body naming one key twice in an object ({"a": 1, "a": 2}) is refused with a 400 saying
so, on every path a JSON body is read: the REST parser (the standard library) and the bulk
ingest's orjson path. Before, the last value won silently, so a proxy or log reading the first
saw another request than the one the product acted on."""

import io
import json

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import translation
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.test import APIClient
from rest_framework.views import APIView

from communities.models import User
from healthkit.inputs import RecordsJSONParser, StrictJSONParser
from healthkit.models import Arrival
from tests.factories import ResidentFactory, UserFactory

MESSAGE = "The JSON body names the same key twice in one object; send each key once."
RECORD = '{"id_number": "%s", "arrived_at": "2022-06-01T09:00:00+08:00", "from_county": "420106", "record_id": "r-%d"}'


def _parse(parser, body: str):
    return parser().parse(io.BytesIO(body.encode()), "application/json", {"encoding": "utf-8"})


REPEATED = [
    ('{"a": 1, "a": 2}', "a"),
    ('{"batch_id": "b", "records": [{"x": 1}], "batch_id": "c"}', "batch_id"),
    ('{"records": [{"id_number": "1", "name": "a", "id_number": "2"}]}', "id_number"),
    ('{"records": [{"at": "12:00", "k": {"z": 1, "z": 1}}]}', "z"),  # the same value twice counts too
    ('{"a": 1, "\\u0061": 2}', "a"),  # the same key written another way
    ('{"a": "x\\u003ay", "b": 1, "b": 2}', "b"),  # an escaped colon in a string
    ('{"records": [], "a": 123456789012345678901, "a": 1}', "a"),  # a number orjson cannot hold
    ('{"\u5f20": 1, "\u5f20": 2}', None),  # not a plain field name: not quoted back
]


@pytest.mark.parametrize("parser", [StrictJSONParser, RecordsJSONParser])
@pytest.mark.parametrize("body, key", REPEATED)
def test_a_repeated_key_is_refused_by_every_json_parser(parser, body, key):
    with translation.override("en"), pytest.raises(ParseError) as refused:  # the default is zh-hans
        _parse(parser, body)
    assert refused.value.detail["message"] == MESSAGE
    assert refused.value.detail["extra"] == ({"key": key} if key else {})


@pytest.mark.parametrize("parser", [StrictJSONParser, RecordsJSONParser])
@pytest.mark.parametrize("body", [
    '{"a": 1, "b": {"a": 2}, "records": [{"a": 3}, {"a": 4}]}',  # the same key in different objects
    '{"at": "2022-06-01T09:00:00+08:00", "note": "a: b: c", "records": [{"t": "1:2"}]}',  # colons in strings
    '{"note": "x\\u003ay", "k": "v"}',  # an escaped colon, no repeat
    '{"note": "\\"a\\": 1, \\"a\\": 2"}',  # a repeat only inside a string
])
def test_bodies_without_a_repeated_key_read_as_before(parser, body):
    assert _parse(parser, body) == json.loads(body)


def _api_views():
    """Every DRF view class the URLconf routes to."""
    stack, found = [get_resolver()], set()
    while stack:
        for entry in stack.pop().url_patterns:
            if isinstance(entry, URLResolver):
                stack.append(entry)
            elif isinstance(entry, URLPattern):
                view = getattr(entry.callback, "cls", None)
                if isinstance(view, type) and issubclass(view, APIView):
                    found.add(view)
    return found


def test_every_api_view_reads_json_through_the_strict_parser():
    views = _api_views()
    assert len(views) > 20
    for view in views:
        for parser in view().get_parsers():
            if isinstance(parser, JSONParser):
                assert isinstance(parser, StrictJSONParser), f"{view.__name__} reads JSON with {type(parser)}"


@pytest.mark.django_db
@pytest.mark.parametrize("size", [2, 600])  # 600 records: past the ingest's streaming chunk
def test_a_batch_with_a_repeated_key_in_one_record_stores_nothing(size):
    # given an ingest batch one of whose records names its record_id twice
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(
        user=UserFactory(role=User.Role.INTEGRATION)).key)
    number = ResidentFactory().reveal_id_number()
    records = [RECORD % (number, i) for i in range(size)]
    records[-1] = records[-1][:-1] + ', "record_id": "smuggled"}'
    body = '{"batch_id": "b-dup", "records": [' + ", ".join(records) + "]}"
    # when it is posted
    response = client.generic("POST", "/api/v1/ingest/arrivals/", body.encode(), content_type="application/json")
    # then it is a 400 naming the key, and no record is stored
    assert response.status_code == 400
    assert response.json() == {"detail": MESSAGE, "code": "parse_error", "errors": {}, "extra": {"key": "record_id"}}
    assert not Arrival.objects.exists()
    # the same batch without the repeat goes in
    records[-1] = RECORD % (number, size)
    fixed = '{"batch_id": "b-ok", "records": [' + ", ".join(records) + "]}"
    assert client.generic("POST", "/api/v1/ingest/arrivals/", fixed.encode(),
                          content_type="application/json").status_code == 200


@pytest.mark.django_db
def test_a_rest_request_with_a_repeated_key_is_a_400_and_does_nothing():
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(
        user=UserFactory(role=User.Role.SUPERVISOR)).key)
    body = b'{"name": "A", "kind": "restaurant", "address": "x", "name": "B"}'
    response = client.generic("POST", "/api/v1/venues/create/", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"] == MESSAGE
