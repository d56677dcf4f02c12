"""A filer whose phone is not on the resident's record hears only about their own filing's
progress: never the community, a popup, an outcome or another appeal's reference."""

import pytest

from appeals.clearance.models import ClearanceTask
from appeals.models import Appeal
from appeals.notices import filer_confirmed
from appeals.services import appeal_close, appeal_file, appeal_merge, appeal_route
from healthkit.models import SmsMessage

pytestmark = pytest.mark.django_db

STRANGER = "13911112222"


@pytest.fixture
def stranger_appeal(resident_with_popup):
    resident, _popup = resident_with_popup
    appeal, _ = appeal_file(resident=resident, popup_type_claimed=3, category="correction", contact_phone=STRANGER,
                            filer_unconfirmed=True)
    return appeal


def _to_stranger():
    return SmsMessage.objects.filter(phone_masked="139****2222").order_by("id")


def test_filer_confirmed_means_the_phone_is_on_record(resident_with_popup, stranger_appeal):
    resident, popup = resident_with_popup
    own, _ = appeal_file(resident=resident, popup=popup, category="correction", contact_phone="13800138000")
    assert filer_confirmed(own) and not filer_confirmed(stranger_appeal)


def test_routing_tells_the_stranger_only_that_a_community_checks_it(stranger_appeal, operator, community,
                                                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        appeal_route(appeal=stranger_appeal, community=community, actor=operator)
    bodies = [m.body for m in _to_stranger()]
    assert len(bodies) == 2  # filed, routed
    assert community.name not in bodies[1] and "responsible community" in bodies[1]
    # the community's link goes to the resident's own phone, never to the stranger's
    task = ClearanceTask.objects.get(appeal=stranger_appeal)
    link_sms = SmsMessage.objects.get(idempotency_key__startswith=f"clearance:{task.pk}:link")
    assert link_sms.phone_masked == "138****8000"


def test_closing_tells_the_stranger_no_outcome(stranger_appeal, operator):
    appeal_close(appeal=stranger_appeal, actor=operator, reason="已解除弹窗", outcome="lifted")
    body = _to_stranger().last().body
    assert "closed" in body and "lifted" not in body.lower() and "已解除弹窗" not in body


def test_a_merge_does_not_hand_the_stranger_the_residents_reference(resident_with_popup, stranger_appeal, operator):
    resident, popup = resident_with_popup
    own, _ = appeal_file(resident=resident, popup=popup, category="correction", contact_phone="13800138000")
    appeal_merge(duplicate=stranger_appeal, into=own, actor=operator)
    body = _to_stranger().last().body
    assert own.reference not in body and stranger_appeal.reference in body
    assert Appeal.objects.get(pk=stranger_appeal.pk).outcome == "merged"
