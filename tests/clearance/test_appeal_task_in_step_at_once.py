"""An operator changes an appeal at the very moment its community decides the task: one waits for
the other (tasks are locked before appeals on both sides: no deadlock, no 500), and the appeal and
its task end in step whichever went first."""

import pytest

from appeals import services as appeal_services
from appeals.clearance import services
from appeals.clearance.models import ClearanceTask
from appeals.models import Appeal
from communities.models import User
from healthkit.errors import ApplicationError
from tests.concurrency import at_once
from tests.factories import CommunityFactory, PopupCaseFactory, UserFactory
from tests.factories.clearance import RoutedAppealFactory, WorkerFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _routed() -> tuple[Appeal, ClearanceTask]:
    appeal = RoutedAppealFactory(popup=None)
    appeal.popup = PopupCaseFactory(resident=appeal.resident, popup_type=1)
    appeal.save(update_fields=["popup"])
    return appeal, services.clearance_open_for_appeal(appeal=appeal)


@pytest.mark.parametrize("attempt", range(3))
def test_asking_for_evidence_while_the_community_accepts(attempt):
    appeal, task = _routed()
    operator = UserFactory(role=User.Role.OPERATOR)
    worker = WorkerFactory(communities=[task.community])

    asked, accepted = at_once(
        lambda: appeal_services.appeal_request_evidence(appeal=appeal, actor=operator, message="请补充材料"),
        lambda: services.clearance_accept(task=task, actor=worker, reason="已核实返京"))

    assert isinstance(accepted, ClearanceTask), accepted  # the community's decision stands either way
    appeal.refresh_from_db()
    task.refresh_from_db()
    assert (task.state, task.on_hold_since, appeal.status) == ("lifted", None, Appeal.Status.CLOSED)
    if isinstance(asked, ApplicationError):  # the community first: nothing left to ask for
        assert not task.events.filter(kind="on_hold").exists()
    else:  # the hotline first: the task was on hold, and the decision ended the hold
        assert task.events.filter(kind="on_hold").exists()


@pytest.mark.parametrize("attempt", range(3))
def test_re_routing_while_the_first_community_accepts(attempt):
    appeal, task = _routed()
    first = task.community
    other = CommunityFactory()
    operator = UserFactory(role=User.Role.OPERATOR)
    worker = WorkerFactory(communities=[first])

    routed, accepted = at_once(
        lambda: appeal_services.appeal_route(appeal=appeal, community=other, actor=operator, reason="改派"),
        lambda: services.clearance_accept(task=task, actor=worker, reason="已核实返京"))

    appeal.refresh_from_db()
    task.refresh_from_db()
    if isinstance(accepted, ClearanceTask):  # the community first: the route finds the appeal closed
        assert isinstance(routed, ApplicationError), routed
        assert (task.state, task.community, appeal.status) == ("lifted", first, Appeal.Status.CLOSED)
    else:  # the hotline first: the task moved, and the first community's decision is refused
        assert isinstance(accepted, ApplicationError) and other.name in accepted.message, accepted
        assert (task.state, task.community, appeal.status) == ("open", other, Appeal.Status.ROUTED)
        assert appeal.routed_community == other


def _beside(appeal: Appeal) -> Appeal:
    """Another open appeal of the same resident, still with the hotline (no community, no task)."""
    return RoutedAppealFactory(resident=appeal.resident, popup=None, status=Appeal.Status.IN_PROGRESS,
                               routed_community=None, routed_at=None)


@pytest.mark.parametrize("attempt", range(3))
def test_merging_a_duplicate_while_its_community_accepts(attempt):
    duplicate, task = _routed()
    into = _beside(duplicate)
    operator = UserFactory(role=User.Role.OPERATOR)
    worker = WorkerFactory(communities=[task.community])

    merged, accepted = at_once(
        lambda: appeal_services.appeal_merge(duplicate=duplicate, into=into, actor=operator),
        lambda: services.clearance_accept(task=task, actor=worker, reason="已核实返京"))

    assert isinstance(accepted, ClearanceTask), accepted  # the community's decision stands either way
    duplicate.refresh_from_db()
    into.refresh_from_db()
    task.refresh_from_db()
    assert task.state == "lifted"
    if isinstance(merged, ApplicationError):  # the community first: the duplicate is closed, nothing to merge
        assert (task.appeal_id, duplicate.outcome) == (duplicate.pk, "lifted")
        assert (into.status, into.routed_community) == (Appeal.Status.IN_PROGRESS, None)
    else:  # the hotline first: the task went on for the surviving appeal, and the decision closed that one
        assert (task.appeal_id, duplicate.outcome) == (into.pk, "merged")
        assert (into.status, into.outcome) == (Appeal.Status.CLOSED, "lifted")


@pytest.mark.parametrize("attempt", range(3))
def test_two_operators_merging_two_appeals_into_each_other(attempt):
    routed, task = _routed()
    other = _beside(routed)
    first, second = UserFactory(role=User.Role.OPERATOR), UserFactory(role=User.Role.OPERATOR)

    one, two = at_once(
        lambda: appeal_services.appeal_merge(duplicate=routed, into=other, actor=first),
        lambda: appeal_services.appeal_merge(duplicate=other, into=routed, actor=second))

    assert [isinstance(r, ApplicationError) for r in (one, two)].count(True) == 1, (one, two)
    survivor = one if isinstance(one, Appeal) else two
    survivor.refresh_from_db()
    task.refresh_from_db()
    # one merge stands, and the community's task is open for the appeal that survived it
    assert (task.state, task.appeal_id, task.community) == ("open", survivor.pk, survivor.routed_community)
    assert survivor.status == Appeal.Status.ROUTED and survivor.is_open
