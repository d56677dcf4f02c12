"""Demo city: districts, streets, communities with compound aliases, residents with popups of
every type in every state, staff of every role; then each app's `demo.seed()`."""

import datetime as dt
import importlib
import random

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction
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
from healthkit.models import PopupCase, PopupEvent, PopupPolicy, TestResult

# A few real streets per district (街道/乡镇) to make the city recognisable.
STREETS = {
    "东城区": ["东华门街道", "景山街道", "交道口街道", "和平里街道"],
    "西城区": ["西长安街街道", "新街口街道", "月坛街道", "展览路街道"],
    "朝阳区": ["望京街道", "团结湖街道", "劲松街道", "酒仙桥街道", "建外街道"],
    "丰台区": ["方庄街道", "右安门街道", "卢沟桥街道", "新村街道"],
    "石景山区": ["八宝山街道", "古城街道", "苹果园街道"],
    "海淀区": ["中关村街道", "学院路街道", "清河街道", "万寿路街道", "海淀街道"],
    "门头沟区": ["大峪街道", "城子街道", "龙泉镇"],
    "房山区": ["拱辰街道", "良乡镇", "长阳镇"],
    "通州区": ["中仓街道", "新华街道", "梨园镇", "永顺镇"],
    "顺义区": ["胜利街道", "光明街道", "后沙峪镇"],
    "昌平区": ["城北街道", "回龙观街道", "天通苑北街道", "霍营街道"],
    "大兴区": ["兴丰街道", "清源街道", "亦庄镇"],
    "怀柔区": ["泉河街道", "龙山街道", "雁栖镇"],
    "平谷区": ["滨河街道", "兴谷街道", "马坊镇"],
    "密云区": ["鼓楼街道", "果园街道", "溪翁庄镇"],
    "延庆区": ["儒林街道", "百泉街道", "康庄镇"],
}
PLACE = ["东", "西", "南", "北", "中", "新", "安", "和", "康", "华", "兴", "景", "青", "光", "明", "园", "林", "春", "秀", "泰"]
SUFFIX_COMMUNITY = ["里社区", "园社区", "苑社区", "路社区", "街社区", "村"]
SUFFIX_COMPOUND = ["小区", "家园", "花园", "公寓", "嘉园", "一区", "二区", "三区", "北里", "南里"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉梅建国建华志强海燕红梅晓东文博子涵雨萱浩然欣怡宇轩思彤"
STAFF = [
    ("admin", User.Role.ADMINISTRATOR, "系统", "管理员"),
    ("supervisor1", User.Role.SUPERVISOR, "督导", "刘"),
    ("operator1", User.Role.OPERATOR, "话务员", "陈"),
    ("operator2", User.Role.OPERATOR, "话务员", "周"),
    ("worker1", User.Role.COMMUNITY_WORKER, "社工", "王"),
    ("worker2", User.Role.COMMUNITY_WORKER, "社工", "李"),
    ("venue1", User.Role.VENUE_MANAGER, "场所", "赵"),
    ("integration1", User.Role.INTEGRATION, "接口", "系统"),
]
DEMO_PASSWORD = "healthkit-demo-2022"  # noqa: S105 - documented demo credential, local data only


class Command(BaseCommand):
    help = "Load a believable demo city (idempotent with --if-empty)."

    def add_arguments(self, parser):
        parser.add_argument("--residents", type=int, default=3000)
        parser.add_argument("--seed", type=int, default=2022)
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if residents exist.")

    def handle(self, *args, residents: int, seed: int, if_empty: bool, **options):
        if if_empty and Resident.objects.exists():
            self.stdout.write("demo data already present; nothing to do")
            return
        rng = random.Random(seed)
        with transaction.atomic():
            communities = self._places(rng)
            self._staff(communities)
            self._residents(rng, communities, residents)
            self._popups(rng)
        for config in apps.get_app_configs():
            if config.name == "healthkit":
                continue
            try:
                module = importlib.import_module(f"{config.name}.demo")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.demo":
                    raise
                continue
            with transaction.atomic():
                module.seed(rng=rng, stdout=self.stdout)
            self.stdout.write(f"  {config.label}: demo data loaded")
        self.stdout.write(self.style.SUCCESS(
            f"demo city ready: {Community.objects.count()} communities, {Resident.objects.count()} residents, "
            f"{PopupCase.objects.count()} popups; staff password: {DEMO_PASSWORD}"
        ))

    def _places(self, rng: random.Random) -> list[Community]:
        communities: list[Community] = []
        aliases: list[CompoundAlias] = []
        for district in District.objects.order_by("code"):
            for s_index, street_name in enumerate(STREETS[district.name], start=1):
                street, _ = Street.objects.get_or_create(
                    district=district, name=street_name,
                    defaults={"code": f"{district.code}{s_index:03d}",
                              "kind": Street.Kind.TOWNSHIP if street_name.endswith("镇") else Street.Kind.STREET},
                )
                prefix = street_name[:2]
                used: set[str] = set()
                for c_index in range(1, rng.randint(3, 5) + 1):
                    name = prefix + rng.choice(PLACE) + rng.choice(SUFFIX_COMMUNITY)
                    while name in used:
                        name = prefix + rng.choice(PLACE) + rng.choice(PLACE) + rng.choice(SUFFIX_COMMUNITY)
                    used.add(name)
                    community, _ = Community.objects.get_or_create(
                        street=street, name=name,
                        defaults={"code": f"{street.code}{c_index:03d}", "phone": f"010-{rng.randint(60000000, 89999999)}",
                                  "address": f"{district.name}{street_name}{name[:-3]}{rng.randint(1, 99)}号"},
                    )
                    communities.append(community)
                    base = name.removesuffix("社区").removesuffix("村")
                    for suffix in rng.sample(SUFFIX_COMPOUND, 2):
                        alias = base + suffix
                        aliases.append(CompoundAlias(
                            community=community, name=alias, normalized=normalize_place_text(alias),
                            address=f"{district.name}{street_name}{alias}{rng.randint(1, 30)}号楼",
                        ))
        CompoundAlias.objects.bulk_create(aliases, ignore_conflicts=True)
        self.stdout.write(f"  places: {len(communities)} communities, {len(aliases)} compound aliases")
        return communities

    def _staff(self, communities: list[Community]) -> None:
        for username, role, first, last in STAFF:
            user, created = User.objects.get_or_create(
                username=username, defaults={"role": role, "first_name": first, "last_name": last,
                                             "is_staff": role in (User.Role.ADMINISTRATOR, User.Role.SUPERVISOR),
                                             "is_superuser": role == User.Role.ADMINISTRATOR},
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
        User.objects.get(username="worker1").communities.set(communities[:3])
        User.objects.get(username="worker2").communities.set(communities[3:6])

    def _residents(self, rng: random.Random, communities: list[Community], count: int) -> None:
        batch: list[Resident] = []
        phones: list[tuple[int, str]] = []
        start = Resident.objects.count()
        # Put a good share of residents in the first communities so worker1's worklist is not empty.
        weighted = communities[:3] * 20 + communities
        for n in range(count):
            district_code = rng.choice(["110101", "110102", "110105", "110106", "110108", "130102", "370102"])
            # (birth day, sequence) is unique per n, so IDs never collide even at millions.
            serial = start + n
            birth = dt.date(1940, 1, 1) + dt.timedelta(days=(serial // 1000) * 7919 % 29000)
            first17 = f"{district_code}{birth:%Y%m%d}{serial % 1000:03d}"
            number = first17 + pii.id_check_digit(first17)
            name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice([1, 2])))
            batch.append(Resident(
                name=name, community=rng.choice(weighted), id_encrypted=pii.encrypt(number),
                id_hash=pii.id_hash(number), id_masked=pii.mask_id(number),
            ))
            phones.append((n, f"1{rng.choice('3578')}{rng.randrange(0, 10**9):09d}"))
            if len(batch) >= 5000:
                self._flush(batch, phones)
                batch, phones = [], []
        if batch:
            self._flush(batch, phones)
        self.stdout.write(f"  residents: {count}")

    def _flush(self, batch: list[Resident], phones: list[tuple[int, str]]) -> None:
        created = Resident.objects.bulk_create(batch, ignore_conflicts=False)
        entries = []
        for (index, phone) in phones:
            entry = ResidentPhone(resident=created[index], is_primary=True)
            entry.set_phone(phone)
            entries.append(entry)
        ResidentPhone.objects.bulk_create(entries, ignore_conflicts=True)

    def _popups(self, rng: random.Random) -> None:
        """Popups of every type in every state, with events that explain them."""
        now = timezone.now()
        ids = list(Resident.objects.order_by("pk").values_list("pk", flat=True))
        chosen = rng.sample(ids, min(len(ids), max(40, len(ids) // 4)))
        policies = {p.popup_type: p for p in PopupPolicy.objects.filter(effective_to__isnull=True)}
        historic_5 = PopupPolicy.objects.get(popup_type=5, version="2022-02-12")
        causes = {
            1: lambda: {"trigger": "stay", "county": rng.choice(["上海市浦东新区", "天津市津南区", "河北省廊坊市广阳区"]),
                        "rule": "type1.affected_county"},
            2: lambda: {"trigger": "entry_quarantine", "rule": "type2.quarantine"},
            3: lambda: {"trigger": rng.choice(["upstream", "venue"]),
                        "reason": rng.choice(["时空伴随", "手机号曾在外地使用", "到访风险点位"]), "rule": "type3.assignment"},
            4: lambda: {"trigger": rng.choice(["arrival", "drug_purchase", "clinic_visit"]),
                        "deadline": (now - dt.timedelta(hours=rng.randint(1, 48))).isoformat(), "rule": "type4.missed_test"},
            5: lambda: {"trigger": "border_port_stay", "county": "云南省瑞丽市", "rule": "type5.border_port"},
        }
        states = [PopupCase.State.ACTIVE, PopupCase.State.UNDER_REVIEW, PopupCase.State.LIFTED, PopupCase.State.WITHDRAWN]
        cases: list[PopupCase] = []
        for index, resident_id in enumerate(chosen):
            popup_type = index % 5 + 1
            state = states[(index // 5) % 4]
            if popup_type == 5:
                # Type 5 was abolished on 2022-07-16: only historic cases exist, all ended.
                raised = dt.datetime(2022, 7, rng.randint(1, 10), 9, tzinfo=dt.UTC)
                state = PopupCase.State.LIFTED
                policy = historic_5
                lifted = dt.datetime(2022, 7, 15, 16, tzinfo=dt.UTC)
            else:
                raised = now - dt.timedelta(hours=rng.randint(2, 24 * 20))
                policy = policies[popup_type]
                lifted = raised + dt.timedelta(hours=rng.randint(1, 48)) if state in (
                    PopupCase.State.LIFTED, PopupCase.State.WITHDRAWN) else None
                if lifted and lifted > now:
                    lifted = now
            cases.append(PopupCase(
                resident_id=resident_id, popup_type=popup_type, cause=causes[popup_type](),
                source=PopupCase.Source.UPSTREAM if popup_type == 3 else PopupCase.Source.ENGINE,
                state=state, policy=policy, raised_at=raised, lifted_at=lifted,
                dedupe_key="" if state in PopupCase.OPEN_STATES else f"demo-{index}",
            ))
        cases = PopupCase.objects.bulk_create(cases)
        events: list[PopupEvent] = []
        results: list[TestResult] = []
        for case in cases:
            events.append(PopupEvent(case=case, kind=PopupEvent.Kind.RAISED, to_state="active",
                                     actor_label=case.source, data={"cause": case.cause, "policy": case.policy.version},
                                     at=case.raised_at))
            if case.state == PopupCase.State.UNDER_REVIEW:
                events.append(PopupEvent(case=case, kind=PopupEvent.Kind.REVIEW_STARTED, from_state="active",
                                         to_state="under_review", actor_label="worker1", reason="社区核实中",
                                         at=case.raised_at + dt.timedelta(minutes=30)))
            elif case.state in (PopupCase.State.LIFTED, PopupCase.State.WITHDRAWN):
                kind = PopupEvent.Kind.LIFTED if case.state == PopupCase.State.LIFTED else PopupEvent.Kind.WITHDRAWN
                events.append(PopupEvent(case=case, kind=kind, from_state="active", to_state=case.state,
                                         actor_label="engine", reason="demo", at=case.lifted_at))
            if case.popup_type == 4 and case.state == PopupCase.State.LIFTED:
                results.append(TestResult(
                    resident_id=case.resident_id, lab="北京市疾控中心", sample_id=f"DEMO{case.pk:08d}",
                    sampled_at=case.lifted_at - dt.timedelta(hours=10), resulted_at=case.lifted_at - dt.timedelta(hours=1),
                    received_at=case.lifted_at, result=TestResult.Outcome.NEGATIVE,
                ))
        PopupEvent.objects.bulk_create(events)
        TestResult.objects.bulk_create(results, ignore_conflicts=True)
        self.stdout.write(f"  popups: {len(cases)} with {len(events)} events")
