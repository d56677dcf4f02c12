"""The filer hears of every step that matters, once: merged (which reference now), routed (which
community, its phone), waiting for them (what, by when), closed (outcome in words, next step)."""

import pytest

from appeals.models import Appeal
from appeals.services import (
    appeal_close,
    appeal_file,
    appeal_merge,
    appeal_request_evidence,
    appeal_route,
)
from healthkit.models import SmsMessage
from tests.factories import CommunityFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def filed(resident_with_popup):
    resident, popup = resident_with_popup
    appeal, _ = appeal_file(resident=resident, popup=popup, category="correction", contact_phone="13800138000")
    return appeal


def _bodies(appeal: Appeal, suffix: str) -> list[str]:
    return list(SmsMessage.objects.filter(idempotency_key__startswith=f"appeal:{appeal.pk}:{suffix}")
                .values_list("body", flat=True))


def test_merged_names_the_reference_to_follow(filed, operator):
    other, _ = appeal_file(resident=filed.resident, popup_type_claimed=5, category="other", contact_phone="13800138000")
    appeal_merge(duplicate=other, into=filed, actor=operator)
    [body] = _bodies(other, "merged")
    assert other.reference in body and f"follow {filed.reference}" in body
    assert _bodies(other, "closed") == []  # the merge is the one SMS of that change


def test_routed_names_the_community_and_its_phone_in_one_sms(filed, operator, sms_outbox,
                                                              django_capture_on_commit_callbacks):
    community = CommunityFactory(name="花家地社区", phone="010-64700000")
    before = SmsMessage.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        appeal_route(appeal=filed, community=community, actor=operator, reason="属地")
    [message] = SmsMessage.objects.order_by("id")[before:]
    # the community's link SMS tells the routing too: one SMS for the change
    assert "花家地社区" in message.body and "010-64700000" in message.body and "/clearance/r/" in message.body
    assert filed.reference in message.body


def test_rerouted_to_another_community_is_told_again(filed, operator, django_capture_on_commit_callbacks):
    first, second = CommunityFactory(name="甲社区"), CommunityFactory(name="乙社区", phone="010-1")
    with django_capture_on_commit_callbacks(execute=True):
        appeal_route(appeal=filed, community=first, actor=operator)
    with django_capture_on_commit_callbacks(execute=True):
        appeal_route(appeal=filed, community=second, actor=operator)
    [body] = _bodies(filed, f"routed:{second.pk}")
    assert "乙社区" in body and "010-1" in body


def test_waiting_says_what_and_by_when(filed, operator):
    link = appeal_request_evidence(appeal=filed, actor=operator, message="请上传行程卡截图")
    body = SmsMessage.objects.get(idempotency_key=f"appeal-evidence:{link.pk}").body
    assert "add evidence" in body and link.expires_at.astimezone().strftime("%Y-%m-%d") in body
    assert "请上传行程卡截图" in body and filed.reference in body


def test_closed_gives_the_outcome_in_words_and_the_next_step(filed, operator):
    appeal_close(appeal=filed, actor=operator, reason="核实后无需处理", outcome="rejected")
    [body] = _bodies(filed, "closed")
    assert "Request not granted" in body and "核实后无需处理" in body and "file a new appeal" in body
    appeal_close(appeal=filed, actor=operator, reason="again", outcome="rejected")
    assert len(_bodies(filed, "closed")) == 1
