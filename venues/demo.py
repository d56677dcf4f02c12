"""Demo data for venues: a few hundred venues across the communities, a week of scans, the
venue1 manager attached to some venues, and one risk window whose exposure job has run."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from communities.models import Community, Resident, User
from healthkit import clock
from venues import exposure, services
from venues.ingest import copy_scans
from venues.models import Venue, new_venue_code
from venues.partitions import scan_partitions_ensure

N_VENUES = 300
N_SCANS = 30_000
KINDS = {
    Venue.Kind.RESTAURANT: ["火锅店", "饺子馆", "烤鸭店", "面馆", "快餐店", "咖啡馆"],
    Venue.Kind.SUPERMARKET: ["超市", "菜市场", "便利店"],
    Venue.Kind.MALL: ["购物中心", "商场"],
    Venue.Kind.HOSPITAL: ["社区卫生服务中心", "医院门诊部"],
    Venue.Kind.OFFICE: ["大厦", "科技园"],
    Venue.Kind.HOTEL: ["酒店"],
    Venue.Kind.SCHOOL: ["小学", "中学"],
    Venue.Kind.TRANSPORT: ["地铁站", "公交枢纽"],
    Venue.Kind.ENTERTAINMENT: ["电影院", "健身房"],
}
BRANDS = ["老北京", "华联", "物美", "京客隆", "金鼎", "胡同", "四季", "和平", "长安", "万家", "鑫源", "福满"]


def seed(*, rng, stdout) -> None:
    communities = list(Community.objects.select_related("street__district").order_by("pk"))
    residents = list(Resident.objects.order_by("pk").values_list("pk", flat=True))
    if not communities or not residents:
        stdout.write("  venues: no communities or residents; skipped")
        return
    now = clock.now().replace(microsecond=0)
    scan_partitions_ensure(at=now)
    with transaction.atomic():
        venues = []
        for i in range(N_VENUES):
            community = rng.choice(communities)
            kind = rng.choice(list(KINDS))
            place = community.street.name.removesuffix("街道").removesuffix("镇")
            name = f"{rng.choice(BRANDS)}{rng.choice(KINDS[kind])}（{place}店）" if i % 3 else \
                f"{place}{rng.choice(KINDS[kind])}"
            venues.append(Venue(code=new_venue_code(), name=name[:120], kind=kind,
                                address=f"{community.street.district.name}{community.street.name}{rng.randint(1, 300)}号",
                                community=community, district=community.street.district))
        venues = Venue.objects.bulk_create(venues)
        manager = User.objects.filter(username="venue1").first()
        if manager is not None:
            for venue in venues[:6]:
                venue.managers.add(manager)

        # A week of scans; the first venues are the busiest (the manager's and the risk point).
        weights = [20 if i < 6 else 1 for i in range(len(venues))]
        picks = rng.choices(venues, weights=weights, k=N_SCANS)
        rows = {}
        for venue in picks:
            day = rng.randrange(0, 7)
            minute = rng.randrange(7 * 60, 22 * 60)
            at = timezone.localtime(now - dt.timedelta(days=day)).replace(hour=0, minute=0, second=0) + dt.timedelta(
                minutes=minute, seconds=rng.randrange(60))
            if at > now:
                at -= dt.timedelta(days=1)
            resident = rng.choice(residents)
            rows[(venue.pk, at, resident)] = (venue.pk, resident, at, at + dt.timedelta(seconds=rng.randrange(1, 90)))
        inserted, _due = copy_scans(list(rows.values()))

        # One risk point: the manager's first venue, two days ago 11:00-14:00 local time.
        supervisor = User.objects.filter(username="supervisor1").first()
        local = timezone.localtime(now - dt.timedelta(days=2)).replace(hour=11, minute=0, second=0)
        window = services.risk_window_create(
            venue=venues[0], starts_at=local, ends_at=local + dt.timedelta(hours=3), risk_level="high",
            reason="确诊病例活动轨迹涉及该场所", actor=supervisor, at=now)
    result = exposure.exposure_run(window_id=window.pk, at=now)
    stdout.write(f"  venues: {len(venues)} venues, {inserted} scans, 1 risk window "
                 f"({result.raised} popups raised)")
