"""A HEAD on a picture (type and size, no picture) is checked like a GET but is not written to
the access audit as a view; a Range request gets the whole picture once (200, one audited view)
and every answer says ranges are not served (`Accept-Ranges: none`)."""

import pytest
from django.urls import reverse

from appeals.services import evidence_store
from communities.models import PersonalDataAccess
from tests.factories import UserFactory
from tests.factories.appeals import AppealFactory, image_bytes, upload

pytestmark = pytest.mark.django_db

VIEWS = ["appeals:evidence-file", "appeals:evidence-thumb", "appeals:api-evidence-file"]


@pytest.fixture
def evidence(resident_with_popup, operator):
    resident, popup = resident_with_popup
    appeal = AppealFactory(resident=resident, popup=popup, assigned_to=operator)
    return evidence_store(upload=upload("a.png", image_bytes("PNG", (400, 700))), appeal=appeal)


def _views_audited(evidence) -> int:
    return PersonalDataAccess.objects.filter(context__startswith=f"evidence:{evidence.pk}/").count()


@pytest.mark.parametrize("view", VIEWS)
def test_head_is_not_audited_as_a_view(client, evidence, operator, view):
    client.force_login(operator)

    head = client.head(reverse(view, args=[evidence.pk]))

    assert head.status_code == 200 and head["Accept-Ranges"] == "none"
    assert _views_audited(evidence) == 0
    client.get(reverse(view, args=[evidence.pk]))
    assert _views_audited(evidence) == 1


@pytest.mark.parametrize("view", VIEWS)
def test_head_by_someone_not_allowed_is_refused_like_a_get(client, evidence, view):
    client.force_login(UserFactory(role="community_worker"))

    assert client.head(reverse(view, args=[evidence.pk])).status_code == 403


@pytest.mark.parametrize("view", VIEWS)
def test_a_range_request_gets_the_whole_picture_once(client, evidence, operator, view):
    client.force_login(operator)
    whole = b"".join(client.get(reverse(view, args=[evidence.pk])).streaming_content)

    ranged = client.get(reverse(view, args=[evidence.pk]), HTTP_RANGE="bytes=0-9")

    assert ranged.status_code == 200 and ranged["Accept-Ranges"] == "none"
    assert "Content-Range" not in ranged
    assert b"".join(ranged.streaming_content) == whole
    assert _views_audited(evidence) == 2
