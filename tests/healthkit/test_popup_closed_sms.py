"""A resident is texted once when a popup is lifted or withdrawn, whoever did it: the engine's
set-wise lift, a withdrawn venue window, a person; a community decision texts on its own."""

import pytest
from django.utils import timezone

from healthkit import notify
from healthkit.models import PopupCase, PopupEvent, SmsMessage
from healthkit.services import popup_withdraw
from tests.factories import PopupCaseFactory, ResidentFactory

pytestmark = pytest.mark.django_db


def _engine_lift(case: PopupCase) -> None:
    """What healthkit.engine writes set-wise when a rule's condition ends."""
    now = timezone.now()
    PopupCase.objects.filter(pk=case.pk).update(state=PopupCase.State.LIFTED, lifted_at=now)
    PopupEvent.objects.create(case=case, kind=PopupEvent.Kind.LIFTED, from_state="active", to_state="lifted",
                              actor_label="engine", reason="Rule 2", at=now)


def test_engine_lift_and_withdrawal_each_text_the_resident_once():
    lifted = PopupCaseFactory(popup_type=2, resident=ResidentFactory(phone="13800138001"))
    withdrawn = PopupCaseFactory(popup_type=3, resident=ResidentFactory(phone="13800138002"))
    _engine_lift(lifted)
    popup_withdraw(case=withdrawn, actor_label="venues", reason="Risk window withdrawn",
                   data={"rule": "venue_risk", "window": 1})
    assert notify.popup_closed_notify() == 2
    assert notify.popup_closed_notify() == 0  # a rerun sends nothing
    by_key = {m.idempotency_key: m for m in SmsMessage.objects.all()}
    lift_sms = by_key[f"popup:{lifted.pk}:closed"]
    withdraw_sms = by_key[f"popup:{withdrawn.pk}:closed"]
    assert lift_sms.resident_id == lifted.resident_id and lift_sms.purpose == "popup_lifted"
    assert withdraw_sms.purpose == "popup_withdrawn"
    assert lift_sms.body != withdraw_sms.body
    assert "2" in lift_sms.body and "3" in withdraw_sms.body


def test_a_community_decision_is_texted_by_clearance_not_twice():
    case = PopupCaseFactory(popup_type=1)
    PopupCase.objects.filter(pk=case.pk).update(state=PopupCase.State.LIFTED, lifted_at=timezone.now())
    PopupEvent.objects.create(case=case, kind=PopupEvent.Kind.LIFTED, actor_label="clearance", at=timezone.now(),
                              data={"rule": "community", "clearance_task": 7})
    assert notify.popup_closed_notify() == 0
    assert not SmsMessage.objects.exists()


def test_popup_news_goes_to_the_record_phone_only():
    resident = ResidentFactory(phone="13800138003")
    case = PopupCaseFactory(popup_type=2, resident=resident)
    _engine_lift(case)
    notify.popup_closed_notify()
    message = SmsMessage.objects.get()
    assert message.phone_masked == resident.phones.get().phone_masked


def test_old_closures_are_not_news():
    case = PopupCaseFactory(popup_type=2)
    _engine_lift(case)
    PopupEvent.objects.filter(case=case).update(at=timezone.now() - notify.POPUP_NEWS_WINDOW * 2)
    assert notify.popup_closed_notify() == 0
