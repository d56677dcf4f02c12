import pytest

from communities.models import District
from communities.selectors import community_find
from communities.services import compound_alias_add
from tests.factories import CommunityFactory, StreetFactory


@pytest.fixture
def city(db):
    chaoyang = District.objects.get(name="朝阳区")
    haidian = District.objects.get(name="海淀区")
    wangjing = StreetFactory(district=chaoyang, name="望京街道", code="110105001")
    zhongguancun = StreetFactory(district=haidian, name="中关村街道", code="110108001")
    west = CommunityFactory(street=wangjing, name="望京西园社区", code="110105001001")
    east = CommunityFactory(street=wangjing, name="望京东园社区", code="110105001002")
    zgc = CommunityFactory(street=zhongguancun, name="科育社区", code="110108001001")
    compound_alias_add(community=west, name="望京西园三区")
    compound_alias_add(community=west, name="望京西园四区")
    compound_alias_add(community=east, name="望京东园七区")
    compound_alias_add(community=zgc, name="中关村科学院南路小区")
    return {"west": west, "east": east, "zgc": zgc}


def test_compound_name_finds_its_community(city):
    matches = community_find("望京西园三区")
    assert matches[0].community == city["west"]
    assert matches[0].matched == "望京西园三区"


def test_full_address_with_building_number_finds_the_community(city):
    matches = community_find("北京市朝阳区望京西园三区 5号楼2单元301")
    assert matches[0].community == city["west"]


def test_partial_name_ranks_closest_first(city):
    matches = community_find("望京东园")
    assert matches[0].community == city["east"]
    assert city["zgc"] not in [m.community for m in matches]


def test_community_name_itself_is_found(city):
    assert community_find("科育社区")[0].community == city["zgc"]


def test_nothing_sensible_returns_nothing(city):
    assert community_find("x") == []
    assert community_find("上海市徐汇区") == []


def test_finder_api_is_public_and_returns_places(city, client):
    response = client.get("/api/v1/communities/find/", {"q": "望京西园四区"})
    assert response.status_code == 200
    assert response.json()[0]["name"] == "望京西园社区"
    assert response.json()[0]["district"] == "朝阳区"
