"""The same resident appealing the same popup again adds to the open appeal and is counted."""

import pytest
from django.urls import reverse

from appeals.models import Appeal, AppealEvent, AppealEvidence
from appeals.services import appeal_close, appeal_file, evidence_store
from tests.appeals.test_resident_filing import file_appeal
from tests.factories import PopupCaseFactory
from tests.factories.appeals import image_bytes, upload

pytestmark = pytest.mark.django_db


def test_second_online_appeal_on_the_same_popup_folds_into_the_first(client, sms_outbox, resident_with_popup):
    resident, popup = resident_with_popup
    file_appeal(client, sms_outbox, resident, popup, files=[upload(data=image_bytes("PNG", (60, 60)))])
    done = file_appeal(client, sms_outbox, resident, popup, category="emergency_medical",
                       files=[upload(data=image_bytes("PNG", (70, 70)))])
    appeal = Appeal.objects.get()
    assert "Added to your open appeal" in done.content.decode()
    assert appeal.repeat_count == 1
    assert appeal.priority == Appeal.Priority.EMERGENCY  # the more urgent category wins
    assert AppealEvidence.objects.filter(appeal=appeal).count() == 2
    repeat = appeal.events.get(kind=AppealEvent.Kind.REPEAT)
    assert repeat.data["repeat_count"] == 1 and repeat.data["evidence_added"] == 1


def test_different_popup_opens_a_separate_appeal(resident_with_popup):
    resident, popup = resident_with_popup
    other = PopupCaseFactory(resident=resident, popup_type=1)
    first, folded_a = appeal_file(resident=resident, popup=popup, category="correction")
    second, folded_b = appeal_file(resident=resident, popup=other, category="correction")
    assert first.pk != second.pk and not folded_a and not folded_b


def test_unlisted_popup_repeats_fold_by_claimed_type(resident_with_popup):
    resident, _popup = resident_with_popup
    first, _ = appeal_file(resident=resident, popup=None, popup_type_claimed=4, category="other")
    again, folded = appeal_file(resident=resident, popup=None, popup_type_claimed=4, category="other")
    assert folded and again.pk == first.pk and again.repeat_count == 1


def test_after_closing_a_new_appeal_is_opened(resident_with_popup):
    resident, popup = resident_with_popup
    first, _ = appeal_file(resident=resident, popup=popup, category="correction")
    appeal_close(appeal=first, actor=None, reason="Popup lifted", outcome="lifted")
    second, folded = appeal_file(resident=resident, popup=popup, category="correction")
    assert not folded and second.pk != first.pk


def test_draft_pictures_beyond_nine_stay_as_drafts_when_folding(resident_with_popup):
    resident, popup = resident_with_popup
    first, _ = appeal_file(resident=resident, popup=popup, category="correction")
    for i in range(8):
        evidence_store(upload=upload(data=image_bytes("PNG", (40 + i, 40))), appeal=first)
    for i in range(3):
        evidence_store(upload=upload(data=image_bytes("PNG", (90 + i, 40))), draft_key="k")
    appeal_file(resident=resident, popup=popup, category="correction", draft_key="k")
    assert first.evidence.count() == 9
    assert AppealEvidence.objects.filter(appeal__isnull=True, draft_key="k").count() == 2  # not lost


def test_status_page_of_a_folded_resident_shows_the_repeat(client, sms_outbox, resident_with_popup):
    resident, popup = resident_with_popup
    file_appeal(client, sms_outbox, resident, popup)
    file_appeal(client, sms_outbox, resident, popup)
    appeal = Appeal.objects.get()
    response = client.post(reverse("appeals:status"), {"reference": appeal.reference,
                                                       "id_number": resident.reveal_id_number(), "phone": "13800138000"})
    assert "You appealed again; it was added to this appeal." in response.content.decode()


def test_a_reference_clash_draws_again(resident_with_popup, monkeypatch):
    from appeals import services

    resident, popup = resident_with_popup
    taken, _ = appeal_file(resident=resident, popup=popup, category="correction")
    draws = iter([taken.reference, "261125-FRESH22"])
    monkeypatch.setattr(services, "_reference", lambda: next(draws))
    other, folded = appeal_file(resident=resident, popup=None, popup_type_claimed=1, category="other")
    assert not folded and other.reference == "261125-FRESH22"
