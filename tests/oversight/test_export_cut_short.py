"""A streamed CSV export whose database session dies half-way (pg_terminate_backend, a restart, a
statement timeout) says so in the file and ends as a failed download: the 200 went out with the
first line, so before, the stream just stopped, and behind a proxy speaking HTTP/1.0 to gunicorn
(nginx's default) the cut file was saved as if whole."""


import pytest
from django.db import DatabaseError, connection
from django.forms.models import model_to_dict
from django.urls import reverse

from appeals.models import Appeal
from communities.models import User
from tests.concurrency import terminate_backend
from tests.factories import UserFactory
from tests.factories.appeals import AppealFactory

pytestmark = pytest.mark.django_db(transaction=True)
INCOMPLETE = "THIS EXPORT IS INCOMPLETE"


def _appeals(count: int) -> None:
    """`count` appeals like one made by the factory (more than one fetch of the export's cursor)."""
    model = AppealFactory()
    fields = {k: v for k, v in model_to_dict(model).items() if k not in ("id", "reference")}
    fields = {(f"{k}_id" if Appeal._meta.get_field(k).is_relation else k): v for k, v in fields.items()
              if not Appeal._meta.get_field(k).many_to_many}
    Appeal.objects.bulk_create([Appeal(**fields, reference=f"X{n:06d}") for n in range(count - 1)])


def test_an_export_whose_connection_dies_half_way_ends_saying_it_is_incomplete(client, monkeypatch):
    # given more appeals than one fetch of the export's cursor brings (2,000)
    _appeals(2100)
    client.force_login(UserFactory(role=User.Role.SUPERVISOR))
    from appeals.oversight import exports

    real_cell, calls = exports.cell, []

    def cell_then_kill(value):
        if not calls:  # the first row is written: the session dies before the next fetch
            terminate_backend(connection.connection.info.backend_pid)
        calls.append(1)
        return real_cell(value)

    monkeypatch.setattr(exports, "cell", cell_then_kill)
    response = client.post(reverse("oversight:export-appeals"),
                           {"reason": "weekly report", "format": "csv", "query": "queue=all"},
                           HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    # when it is downloaded
    received = []
    with pytest.raises(DatabaseError):
        for chunk in response.streaming_content:
            received.append(chunk)
    # then what arrived ends with a line saying it is incomplete, and the stream was cut (an error)
    text = b"".join(received).decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert 1000 < len(lines) < 2100
    assert lines[-1].startswith(INCOMPLETE)
    connection.close()
