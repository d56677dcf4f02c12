"""The class of bug "a new page shows a person and forgets the audit" cannot land unnoticed: every
URL of the project that addresses one object (walked from the URL x role matrix, so a new URL is
included as soon as it has a row there), opened by each staff role that may open it, either shows
nothing of the world's resident or writes an access-audit row naming that resident."""

import pytest

from appeals.models import AppealEvidence
from communities.models import PersonalDataAccess
from tests.test_url_role_matrix import MATRIX, _url, client_for, world  # noqa: F401 - `world` is a fixture

pytestmark = pytest.mark.django_db

STAFF_ROLES = ("operator", "worker", "supervisor", "administrator", "integration")


def test_every_single_object_page_that_shows_the_person_is_audited(world):  # noqa: F811
    resident = world.unconfirmed.resident
    marks = {resident.id_masked, resident.masked, resident.masked_name}
    evidence = AppealEvidence.objects.get(pk=world.args["evidence"]["pk"])
    pictures = {evidence.file.read(), evidence.thumbnail.read()}  # the person's screenshots
    unaudited = []
    for role in STAFF_ROLES:
        client = client_for(role, world)
        user = world.users[role]
        for name, (key, expected) in MATRIX.items():
            if key is None or name == "admin:*" or expected[role] != 200:
                continue
            before = PersonalDataAccess.objects.filter(actor=user, resident=resident).count()
            response = client.get(_url(name, world, key, role))
            if response.status_code != 200:
                continue
            body = b"".join(response.streaming_content) if response.streaming else response.content
            shows_person = body in pictures or any(mark and mark.encode() in body for mark in marks)
            audited = PersonalDataAccess.objects.filter(actor=user, resident=resident).count() > before
            if shows_person and not audited:
                unaudited.append(f"{role} {name}")
    assert not unaudited, "pages showing a person without an audit row: " + ", ".join(unaudited)
