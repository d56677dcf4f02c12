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
