"""The finder also knows a compound by its street address: residents often write the address
(门牌) rather than the compound's name."""

import pytest

from communities.models import District
from communities.selectors import community_find
from communities.services import compound_alias_add
from tests.factories import CommunityFactory, StreetFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def city():
    chaoyang = District.objects.get(name="朝阳区")
    street = StreetFactory(district=chaoyang, name="望京街道", code="110105001")
    guangshun = CommunityFactory(street=street, name="广顺社区", code="110105001003")
    other = CommunityFactory(street=street, name="花家地社区", code="110105001004")
    compound_alias_add(community=guangshun, name="南湖中园", address="朝阳区广顺北大街33号院")
    compound_alias_add(community=other, name="花家地西里", address="朝阳区花家地街10号院")
    return guangshun


def test_street_address_finds_the_community_named_by_its_compound(city):
    matches = community_find("广顺北大街33号院 2号楼")
    assert matches[0].community == city
    assert matches[0].matched == "南湖中园"


def test_address_written_with_spaces_and_punctuation(city):
    assert community_find("北京市 朝阳区，广顺北大街 33号院")[0].community == city
