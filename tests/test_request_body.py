"""Request bodies as HTTP clients frame them: compressed (Content-Encoding gzip or deflate) and
chunked (no Content-Length) bodies reach the parsers decoded and whole, bounded by
DATA_UPLOAD_MAX_MEMORY_SIZE while decoding (a zip bomb is a 413), and whatever cannot be read
is refused saying why (400, 411, 415 with Accept-Encoding) with nothing stored. Before, a
gzip batch was "not text in the declared character set" and a chunked one was read as empty."""

import gzip
import io
import json
import zlib

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from communities.models import User
from healthkit.models import Arrival
from tests.factories import ResidentFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/ingest/arrivals/"


@pytest.fixture
def client():
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION="Token " + Token.objects.create(
        user=UserFactory(role=User.Role.INTEGRATION)).key)
    return client


def _batch(n: int = 2) -> bytes:
    records = [{"id_number": ResidentFactory().reveal_id_number(), "arrived_at": "2022-06-01T09:00:00+08:00",
                "from_county": "420106", "record_id": f"a-{i}"} for i in range(n)]
    return json.dumps({"batch_id": "b-1", "records": records}).encode()


def _post(client, body: bytes, **headers):
    return client.generic("POST", URL, body, content_type="application/json", **headers)


@pytest.mark.parametrize("coding, compress", [
    ("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress),
    ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),  # raw deflate, as some clients send
    ("gzip, identity", gzip.compress),
])
def test_a_compressed_batch_is_read_as_the_plain_one(client, coding, compress):
    response = _post(client, compress(_batch()), HTTP_CONTENT_ENCODING=coding)
    assert response.status_code == 200, response.content
    assert (response.json()["accepted"], response.json()["rejected"]) == (2, [])
    assert Arrival.objects.count() == 2


def test_a_zip_bomb_is_a_413_after_at_most_the_limit(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    bomb = gzip.compress(b'{"records": [' + b" " * 50_000_000 + b"]}")  # 50 MB of JSON in ~50 kB
    assert len(bomb) < settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = _post(client, bomb, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert response.json()["detail"] == ("The request body is too large (at most 97.7\xa0KB).")


def test_a_body_that_does_not_decode_is_a_400_naming_the_coding(client):
    for body in (b"not gzip at all", gzip.compress(_batch())[:-20]):  # garbage; a truncated stream
        response = _post(client, body, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 400
        assert response.json()["detail"] == ("The body is not valid gzip data (Content-Encoding).")
    assert not Arrival.objects.exists()


def test_an_unknown_coding_is_a_415_naming_the_ones_understood(client):
    response = _post(client, _batch(), HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415 and response["Accept-Encoding"] == "gzip, deflate"
    assert "Content-Encoding br is not supported" in response.json()["detail"]
    assert not Arrival.objects.exists()


def test_a_chunked_batch_is_read_whole_when_the_server_delivers_it(client):
    # gunicorn decodes the chunks (wsgi.input_terminated: read to the end) and sends no CONTENT_LENGTH
    body = _batch()
    response = _post(client, body, HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="",
                     **{"wsgi.input_terminated": True, "wsgi.input": io.BytesIO(body)})
    assert response.status_code == 200 and response.json()["accepted"] == 2


def test_a_chunked_compressed_batch_over_the_limit_is_a_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = _post(client, _batch(20), HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="",
                     **{"wsgi.input_terminated": True})
    assert response.status_code == 413 and not Arrival.objects.exists()


def test_a_chunked_body_a_server_cannot_deliver_whole_is_a_411(client):
    response = _post(client, _batch(), HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="")
    assert response.status_code == 411
    assert response.json()["detail"] == ("Send the body with a Content-Length header (a chunked body cannot be "
                                         "read here).")
    assert not Arrival.objects.exists()
