import threading

import pytest
from django.db import connection

from healthkit.errors import ApplicationError, IllegalTransition
from healthkit.models import PopupCase, PopupEvent
from healthkit.services import (
    popup_case_transition,
    popup_lift,
    popup_raise,
    popup_reject_review,
    popup_start_review,
    popup_withdraw,
)
from tests.factories import PopupCaseFactory, ResidentFactory, UserFactory

S = PopupCase.State
ALL_STATES = [S.ACTIVE, S.UNDER_REVIEW, S.LIFTED, S.WITHDRAWN]
LEGAL = {(S.ACTIVE, S.UNDER_REVIEW), (S.ACTIVE, S.LIFTED), (S.ACTIVE, S.WITHDRAWN),
         (S.UNDER_REVIEW, S.ACTIVE), (S.UNDER_REVIEW, S.LIFTED), (S.UNDER_REVIEW, S.WITHDRAWN)}


def _case_in(state):
    case = PopupCaseFactory()
    if state == S.UNDER_REVIEW:
        popup_start_review(case=case, actor=None)
    elif state in (S.LIFTED, S.WITHDRAWN):
        popup_case_transition(case=case, to=state, actor_label="test", reason="setup")
    case.refresh_from_db()
    return case


@pytest.mark.django_db
@pytest.mark.parametrize("source,target", sorted(LEGAL))
def test_legal_transition_changes_state_and_logs_an_event(source, target):
    case = _case_in(source)
    worker = UserFactory(role="community_worker")
    popup_case_transition(case=case, to=target, actor=worker, reason="checked")
    case.refresh_from_db()
    assert case.state == target
    event = case.events.order_by("-id").first()
    assert (event.from_state, event.to_state, event.actor, event.reason) == (source, target, worker, "checked")
    assert (case.lifted_at is not None) == (target in (S.LIFTED, S.WITHDRAWN))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "source,target",
    [(a, b) for a in ALL_STATES for b in ALL_STATES if (a, b) not in LEGAL],
)
def test_illegal_transition_raises_a_clear_error_and_changes_nothing(source, target):
    case = _case_in(source)
    events_before = case.events.count()
    with pytest.raises(IllegalTransition) as error:
        popup_case_transition(case=case, to=target, actor_label="test", reason="no")
    assert error.value.extra == {"from": source, "to": target, "case": case.pk}
    case.refresh_from_db()
    assert case.state == source
    assert case.events.count() == events_before


@pytest.mark.django_db
def test_review_rejected_goes_back_to_active_with_a_rejected_event():
    case = _case_in(S.UNDER_REVIEW)
    popup_reject_review(case=case, actor=None, reason="行程核实不符")
    assert case.state == S.ACTIVE
    assert case.events.order_by("-id").first().kind == PopupEvent.Kind.REJECTED


@pytest.mark.django_db
def test_raise_is_idempotent_per_cause_and_refused_for_abolished_type():
    resident = ResidentFactory()
    first, created = popup_raise(resident=resident, popup_type=3, source="upstream", cause={"reason": "a"})
    again, created_again = popup_raise(resident=resident, popup_type=3, source="upstream", cause={"reason": "a"})
    assert created and not created_again and first == again
    other, created_other = popup_raise(resident=resident, popup_type=3, source="venue", cause={}, dedupe_key="venue:1")
    assert created_other and other != first
    with pytest.raises(ApplicationError):
        popup_raise(resident=resident, popup_type=5, source="engine", cause={})  # abolished now
    popup_lift(case=first, actor_label="community", reason="核实无风险")
    reopened, created_new = popup_raise(resident=resident, popup_type=3, source="upstream", cause={})
    assert created_new and reopened != first


@pytest.mark.django_db(transaction=True)
def test_concurrent_lifts_of_one_case_lift_it_once():
    case = PopupCaseFactory()
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def lift():
        barrier.wait()
        try:
            popup_lift(case=PopupCase.objects.get(pk=case.pk), actor_label="t", reason="r")
            outcomes.append("lifted")
        except IllegalTransition:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=lift) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lifted", "refused", "refused", "refused"]
    assert PopupEvent.objects.filter(case=case, kind=PopupEvent.Kind.LIFTED).count() == 1


@pytest.mark.django_db
def test_withdraw_records_reason():
    case = PopupCaseFactory()
    popup_withdraw(case=case, actor_label="venues", reason="风险时段更正")
    assert case.state == S.WITHDRAWN
    assert case.events.get(kind=PopupEvent.Kind.WITHDRAWN).reason == "风险时段更正"
