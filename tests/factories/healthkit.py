"""Factories for the engine's signals and outbox (received_at defaults to the signal's instant)."""

import datetime as dt

import factory

from healthkit.models import (
    Arrival,
    DownstreamEndpoint,
    LocalCase,
    MedicalEvent,
    PopupAssignment,
    QuarantineOrder,
    Stay,
)
from tests.factories import ResidentFactory

CST = dt.timezone(dt.timedelta(hours=8))


def cst(*args: int) -> dt.datetime:
    """A Beijing-time instant: cst(2022, 7, 16) is 2022-07-16 00:00 +08:00."""
    return dt.datetime(*args, tzinfo=CST)


class ArrivalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Arrival

    resident = factory.SubFactory(ResidentFactory)
    arrived_at = factory.LazyFunction(lambda: cst(2022, 6, 1, 9))
    from_county = "310115"
    record_key = factory.Sequence(lambda n: f"test:arrival:{n}")
    received_at = factory.LazyAttribute(lambda o: o.arrived_at)


class StayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Stay

    resident = factory.SubFactory(ResidentFactory)
    county = "420111"
    started_at = factory.LazyFunction(lambda: cst(2022, 7, 1, 9))
    ended_at = factory.LazyFunction(lambda: cst(2022, 7, 5, 12))
    border_port = False
    record_key = factory.Sequence(lambda n: f"test:stay:{n}")
    received_at = factory.LazyAttribute(lambda o: o.ended_at or o.started_at)


class LocalCaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LocalCase

    county = "420111"
    reported_at = factory.LazyFunction(lambda: cst(2022, 7, 3, 10))
    record_key = factory.Sequence(lambda n: f"test:case:{n}")
    received_at = factory.LazyAttribute(lambda o: o.reported_at)


class QuarantineOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = QuarantineOrder

    resident = factory.SubFactory(ResidentFactory)
    starts_at = factory.LazyFunction(lambda: cst(2022, 5, 1, 10))
    ends_at = factory.LazyFunction(lambda: cst(2022, 5, 8, 10))
    record_key = factory.Sequence(lambda n: f"test:quarantine:{n}")
    received_at = factory.LazyAttribute(lambda o: o.starts_at)


class MedicalEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MedicalEvent

    resident = factory.SubFactory(ResidentFactory)
    kind = MedicalEvent.Kind.DRUG_PURCHASE
    detail = "fever"
    occurred_at = factory.LazyFunction(lambda: cst(2022, 6, 1, 9))
    record_key = factory.Sequence(lambda n: f"test:medical:{n}")
    received_at = factory.LazyAttribute(lambda o: o.occurred_at)


class PopupAssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PopupAssignment

    resident = factory.SubFactory(ResidentFactory)
    popup_type = 3
    reason = "时空伴随"
    assigned_at = factory.LazyFunction(lambda: cst(2022, 9, 1, 8))
    record_key = factory.Sequence(lambda n: f"test:assignment:{n}")
    received_at = factory.LazyAttribute(lambda o: o.assigned_at)


class DownstreamEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DownstreamEndpoint

    name = factory.Sequence(lambda n: f"endpoint-{n}")
    url = "http://127.0.0.1:9/unused"
    token = "secret-token"
