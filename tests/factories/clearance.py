"""Factories for community clearance tests (appeals built minimally here, so these tests do not
depend on the appeals app's own factories)."""

import factory
from django.utils import timezone

from appeals.clearance.models import ClearanceTask
from appeals.models import Appeal
from communities.models import User
from tests.factories import CommunityFactory, PopupCaseFactory, ResidentFactory, UserFactory


class RoutedAppealFactory(factory.django.DjangoModelFactory):
    """An appeal the operator has routed to the resident's community."""

    class Meta:
        model = Appeal

    reference = factory.Sequence(lambda n: f"A2211{n:07d}")
    resident = factory.SubFactory(ResidentFactory)
    popup = factory.SubFactory(PopupCaseFactory, resident=factory.SelfAttribute("..resident"))
    category = Appeal.Category.CORRECTION
    status = Appeal.Status.ROUTED
    community = factory.LazyAttribute(lambda o: o.resident.community)
    routed_community = factory.LazyAttribute(lambda o: o.resident.community)
    routed_at = factory.LazyFunction(timezone.now)


class WorkerFactory(UserFactory):
    role = User.Role.COMMUNITY_WORKER


class ClearanceTaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClearanceTask

    resident = factory.SubFactory(ResidentFactory)
    community = factory.LazyAttribute(lambda o: o.resident.community)
    popup = factory.SubFactory(PopupCaseFactory, resident=factory.SelfAttribute("..resident"))
    origin = ClearanceTask.Origin.RISK_LINK
    created_at = factory.LazyFunction(timezone.now)
    sla_due_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(hours=24))


__all__ = ["CommunityFactory", "RoutedAppealFactory", "WorkerFactory", "ClearanceTaskFactory"]
