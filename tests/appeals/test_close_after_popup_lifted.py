"""An operator's "not granted" for a popup that has meanwhile been lifted (the engine, a lab
result) is refused, saying so, instead of texting the resident "rejected" beside "lifted"."""

import pytest
from django.utils import timezone

from appeals import services
from appeals.models import Appeal
from communities.models import User
from healthkit.errors import ApplicationError
from healthkit.models import PopupCase, SmsMessage
from tests.factories import PopupCaseFactory, ResidentFactory, UserFactory

pytestmark = pytest.mark.django_db


def _appeal_on_lifted_popup() -> Appeal:
    resident = ResidentFactory()
    popup = PopupCaseFactory(resident=resident, popup_type=4)
    appeal, _folded = services.appeal_file(resident=resident, popup=popup, category="correction")
    PopupCase.objects.filter(pk=popup.pk).update(state=PopupCase.State.LIFTED, lifted_at=timezone.now())
    return appeal


def test_rejecting_an_appeal_whose_popup_was_lifted_is_refused():
    appeal = _appeal_on_lifted_popup()
    operator = UserFactory(role=User.Role.OPERATOR)

    with pytest.raises(ApplicationError) as refused:
        services.appeal_close(appeal=appeal, actor=operator, reason="无依据", outcome="rejected")

    assert "lifted" in refused.value.message.lower()
    assert Appeal.objects.get(pk=appeal.pk).is_open
    assert not SmsMessage.objects.filter(purpose="appeal_closed").exists()


def test_closing_it_as_lifted_goes_through():
    appeal = _appeal_on_lifted_popup()

    closed = services.appeal_close(appeal=appeal, actor=UserFactory(role=User.Role.OPERATOR), reason="已自动解除",
                                   outcome="lifted")

    assert (closed.status, closed.outcome) == (Appeal.Status.CLOSED, "lifted")
