"""Factories for venues, scans and risk windows."""

import datetime as dt

import factory

from tests.factories import CommunityFactory, ResidentFactory
from venues.models import RiskWindow, Venue, VenueScan

CST = dt.timezone(dt.timedelta(hours=8))


def cst(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=CST)


class VenueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Venue
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"测试餐厅{n}号店")
    kind = Venue.Kind.RESTAURANT
    address = factory.Sequence(lambda n: f"朝阳区测试路{n}号")
    community = factory.SubFactory(CommunityFactory)
    district = factory.LazyAttribute(lambda o: o.community.street.district)

    @factory.post_generation
    def managers(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.managers.set(extracted)


class VenueScanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VenueScan

    venue = factory.SubFactory(VenueFactory)
    resident = factory.SubFactory(ResidentFactory)
    scanned_at = factory.LazyFunction(lambda: cst(2022, 9, 1, 12))
    received_at = factory.LazyAttribute(lambda o: o.scanned_at)


class RiskWindowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RiskWindow

    venue = factory.SubFactory(VenueFactory)
    starts_at = factory.LazyFunction(lambda: cst(2022, 9, 1, 10))
    ends_at = factory.LazyFunction(lambda: cst(2022, 9, 1, 14))
    risk_level = RiskWindow.Level.HIGH
    reason = "确诊病例活动轨迹"
