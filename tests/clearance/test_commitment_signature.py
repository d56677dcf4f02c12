"""The commitment letter is signed only by the resident the link was issued to: the typed name
must match the record (spacing and full-width forms tolerated); a mismatch is refused with a
clear message and counted; the worker sees who signed, when, through which link, and the
letter text's digest."""

import pytest
from django.urls import reverse
from django.utils import translation

from appeals.clearance import services
from appeals.clearance.models import ClearanceEvent, ClearanceLink
from tests.factories import ResidentFactory
from tests.factories.clearance import ClearanceTaskFactory, WorkerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def letter_link():
    resident = ResidentFactory(name="王小明")
    task = ClearanceTaskFactory(resident=resident, commitment_required=True)
    link, token = services.clearance_link_issue(task=task, purpose=ClearanceLink.Purpose.COMMITMENT)
    return task, link, token


@pytest.mark.parametrize("typed", ["王小明", " 王 小明 ", "王\u3000小明", "王小明\t"])
def test_spacing_is_tolerated(typed):
    assert services.signature_name_key(typed) == services.signature_name_key("王小明")


def test_full_width_forms_and_name_dots_are_tolerated():
    key = services.signature_name_key
    assert key("ＬＩ　Ｌｅｉ") == key("Li Lei") == key("li lei")
    assert key("阿依古丽・买买提") == key("阿依古丽·买买提") == key("阿依古丽．买买提")
    assert key("王小明") != key("王小红")


def test_another_name_is_refused_counted_and_the_link_still_works(letter_link):
    task, link, token = letter_link
    for _attempt in range(2):
        with translation.override("en"), pytest.raises(services.SignatureMismatch) as refused:
            services.clearance_confirm_submit(token=token, confirmation={}, signature="李雷")
        assert "not the name of the person this letter was sent to" in refused.value.message
    task.refresh_from_db()
    link.refresh_from_db()
    assert task.commitment_signed_at is None and link.used_at is None
    assert task.events.filter(kind=ClearanceEvent.Kind.SIGNATURE_REFUSED).count() == 2
    services.clearance_confirm_submit(token=token, confirmation={}, signature="王 小明")
    task.refresh_from_db()
    assert task.commitment_signed_at is not None


def test_signed_event_records_link_and_letter_digest(letter_link):
    task, link, token = letter_link
    services.clearance_confirm_submit(token=token, confirmation={}, signature="王小明")
    event = task.events.get(kind=ClearanceEvent.Kind.COMMITMENT_SIGNED)
    assert event.data["link"] == link.pk and event.actor_label == "resident"
    assert event.data["letter_sha256"] == services.letter_digest(services.commitment_letter_text())
    assert "王小明" not in str(event.data)


def test_resident_page_refuses_with_a_clear_message(client, letter_link):
    task, _link, token = letter_link
    response = client.post(f"/clearance/r/{token}/", {"signature": "李雷", "agree": "on"},
                           HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "not the name of the person this letter was sent to" in response.content.decode()
    task.refresh_from_db()
    assert task.commitment_signed_at is None


def test_worker_sees_who_signed_when_which_link_and_the_digest(client, letter_link):
    task, link, token = letter_link
    with pytest.raises(services.SignatureMismatch):
        services.clearance_confirm_submit(token=token, confirmation={}, signature="李雷")
    services.clearance_confirm_submit(token=token, confirmation={}, signature="王小明")
    client.force_login(WorkerFactory(communities=[task.community]))
    page = client.get(reverse("clearance:task", args=[task.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="commitment"' in page and task.resident.masked in page
    digest = task.events.get(kind=ClearanceEvent.Kind.COMMITMENT_SIGNED).data["letter_sha256"]
    assert len(digest) == 64 and digest in page
    assert f"#{link.pk}" in page
    assert 'id="signature-refused"' in page and "1 signature refused" in page
