"""factory-boy factories shared by every app's tests."""

import datetime as dt
import random

import factory
from django.utils import timezone

from communities import pii
from communities.models import (
    Community,
    CompoundAlias,
    District,
    Resident,
    ResidentPhone,
    Street,
    User,
)
from communities.services import normalize_place_text
from healthkit.models import PopupCase, TestResult

_rng = random.Random(20221116)


def make_id_number(*, birth: dt.date | None = None, region: str = "110105") -> str:
    """A valid 18-character ID (GB 11643 check digit) with a random sequence number."""
    birth = birth or dt.date(1960, 1, 1) + dt.timedelta(days=_rng.randrange(0, 20000))
    first17 = f"{region}{birth:%Y%m%d}{_rng.randrange(0, 1000):03d}"
    return first17 + pii.id_check_digit(first17)


def make_phone() -> str:
    return f"1{_rng.choice('3456789')}{_rng.randrange(0, 10**9):09d}"


class DistrictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = District
        django_get_or_create = ("code",)

    code = "110105"
    name = "朝阳区"
    name_en = "Chaoyang"


class StreetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Street

    district = factory.SubFactory(DistrictFactory)
    code = factory.Sequence(lambda n: f"110105{n:03d}")
    name = factory.Sequence(lambda n: f"测试街道{n}")


class CommunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Community

    street = factory.SubFactory(StreetFactory)
    code = factory.Sequence(lambda n: f"110105900{n:03d}")
    name = factory.Sequence(lambda n: f"测试社区{n}")


class CompoundAliasFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CompoundAlias

    community = factory.SubFactory(CommunityFactory)
    name = factory.Sequence(lambda n: f"测试小区{n}")
    normalized = factory.LazyAttribute(lambda o: normalize_place_text(o.name))


class ResidentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Resident
        exclude = ("id_number",)
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"王{n}")
    community = factory.SubFactory(CommunityFactory)
    id_number = factory.LazyFunction(make_id_number)
    id_encrypted = factory.LazyAttribute(lambda o: pii.encrypt(pii.normalize_id_number(o.id_number)))
    id_hash = factory.LazyAttribute(lambda o: pii.id_hash(o.id_number))
    id_masked = factory.LazyAttribute(lambda o: pii.mask_id(o.id_number))

    @factory.post_generation
    def phone(obj, create, extracted, **kwargs):
        if not create:
            return
        entry = ResidentPhone(resident=obj, is_primary=True)
        entry.set_phone(extracted or make_phone())
        entry.save()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    role = User.Role.OPERATOR
    # An integration client gets every feed unless a test names its feeds (tests of the scope do).
    feeds = factory.LazyAttribute(lambda user: list(User.Feed.values) if user.role == User.Role.INTEGRATION else [])
    is_staff = False
    password = factory.PostGenerationMethodCall("set_password", "pass-1234-word")

    @factory.post_generation
    def communities(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.communities.set(extracted)
        if create:
            obj.save()


class PopupCaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PopupCase

    resident = factory.SubFactory(ResidentFactory)
    popup_type = 3
    source = PopupCase.Source.UPSTREAM
    cause = factory.LazyFunction(lambda: {"trigger": "upstream", "reason": "test"})
    raised_at = factory.LazyFunction(timezone.now)


class TestResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TestResult

    resident = factory.SubFactory(ResidentFactory)
    lab = "北京测试检测所"
    sample_id = factory.Sequence(lambda n: f"S{n:09d}")
    sampled_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=8))
    resulted_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=2))
    received_at = factory.LazyFunction(timezone.now)
    result = TestResult.Outcome.NEGATIVE
