"""Demo city: districts, streets, communities with compound aliases, residents with popups of
every type in every state (raised and lifted by the real engine from demo signals, so the beat
sweep that follows agrees with them), staff of every role; then each app's `demo.seed()`."""

import datetime as dt
import importlib
import random
import uuid
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Count

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
from healthkit import clock, engine
from healthkit.ingest import DRUG_CATEGORIES, SYMPTOMS
from healthkit.models import (
    Arrival,
    LocalCase,
    MedicalEvent,
    PopupAssignment,
    PopupCase,
    QuarantineOrder,
    Stay,
    TestResult,
)
from healthkit.services import popup_case_transition, popup_lift, popup_withdraw

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
# The demo supervisor's and administrator's authenticator key (TOTP second factor), documented
# like the password: demo data only. `manage.py demo_totp` prints their current code.
DEMO_TOTP_KEY_HEX = "4865616c74684b69742d64656d6f2d3230323221"  # noqa: S105 - b"HealthKit-demo-2022!"
DEMO_TOTP_USERS = ("supervisor1", "admin")


class Command(BaseCommand):
    help = "Load a believable demo city (idempotent with --if-empty)."

    def add_arguments(self, parser):
        parser.add_argument("--residents", type=int, default=3000)
        parser.add_argument("--seed", type=int, default=2022)
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if residents exist.")

    def handle(self, *args, residents: int, seed: int, if_empty: bool, **options):
        demos = _demo_modules()
        # What a previous run already committed (each step is one transaction, so a step's
        # tables are either filled or untouched): a run that stopped half-way resumes here.
        core_loaded = Resident.objects.exists()
        loaded = {label for label, module, config in demos
                  if (module.is_loaded() if hasattr(module, "is_loaded") else _has_rows(config))}
        if if_empty and core_loaded and len(loaded) == len(demos):
            self.stdout.write("demo data already present; nothing to do")
            return
        rng = random.Random(seed)
        if core_loaded and if_empty:
            self.stdout.write("  city, staff, residents and popups already present; resuming")
        else:
            with transaction.atomic():
                communities = self._places(rng)
                self._staff(communities)
                self._residents(rng, communities, residents)
                self._popups(rng)
        for label, module, _config in demos:
            if label in loaded:
                self.stdout.write(f"  {label}: demo data already present")
                continue
            with transaction.atomic():
                module.seed(rng=rng, stdout=self.stdout)
            self.stdout.write(f"  {label}: demo data loaded")
        self.stdout.write(self.style.SUCCESS(
            f"demo city ready: {Community.objects.count()} communities, {Resident.objects.count()} residents, "
            f"{PopupCase.objects.count()} popups; staff password: {DEMO_PASSWORD}"
        ))
        self.stdout.write(
            f"  second factor of {' and '.join(DEMO_TOTP_USERS)} (demo only): authenticator key "
            f"{demo_totp_key_base32()}, or `manage.py demo_totp` for the current code"
        )

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
                                             "is_superuser": role == User.Role.ADMINISTRATOR,
                                             # the demo's one client feeds everything (a real lab's
                                             # token gets test results and its lab only)
                                             "feeds": list(User.Feed.values) if role == User.Role.INTEGRATION
                                             else []},
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
        from django_otp.plugins.otp_totp.models import TOTPDevice

        for username in DEMO_TOTP_USERS:
            TOTPDevice.objects.get_or_create(user=User.objects.get(username=username), name="demo",
                                             defaults={"key": DEMO_TOTP_KEY_HEX, "confirmed": True})
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
        """Popups of every type in every state, made the way production makes them, so that the
        engine agrees with the demo when Celery beat sweeps it: signals dated around the demo's
        now (healthkit.clock, the instant the beat sweep evaluates), the real engine raising and
        lifting types 1, 2, 4 and 5 from them (their events and "why" are the engine's own),
        upstream assignments raising type 3, and people's actions through the services.

        Active, under-review and withdrawn popups of types 1, 2 and 4 rest on signals that still
        hold (for days: type 1 stays in force at least 4 days, type 2 at least 2, type 4 until a
        negative result arrives); lifted ones on signals that held 13 days ago and have lapsed
        since, lifted by the engine with what ended them. Type 5 was abolished on 2022-07-16, so
        its popups are historic: raised in July 2022, lifted by the window or the abolition."""
        now = clock.now().replace(microsecond=0)
        ids = list(Resident.objects.order_by("pk").values_list("pk", flat=True))
        chosen = rng.sample(ids, min(len(ids), max(40, len(ids) // 4)))
        # One in six under review: each of those gets an appeal in progress (appeals.demo).
        states = [PopupCase.State.ACTIVE, PopupCase.State.UNDER_REVIEW, PopupCase.State.LIFTED,
                  PopupCase.State.WITHDRAWN, PopupCase.State.ACTIVE, PopupCase.State.LIFTED]
        plan = [(resident_id, index % 5 + 1,
                 PopupCase.State.LIFTED if index % 5 + 1 == 5 else states[(index // 5) % len(states)])
                for index, resident_id in enumerate(chosen)]
        signals = _DemoSignals(rng=rng, now=now)
        for resident_id, popup_type, state in plan:
            signals.add(resident_id=resident_id, popup_type=popup_type, holds_now=state != PopupCase.State.LIFTED)
        signals.save()

        # The engine, at the instants the demo's history needs, then at the demo's now.
        by_instant: dict[dt.datetime, list[int]] = {}
        for resident_id, popup_type, state in plan:
            if state == PopupCase.State.LIFTED and popup_type != 3:
                by_instant.setdefault(DEMO_JULY if popup_type == 5 else signals.past, []).append(resident_id)
        for instant in sorted(by_instant):
            engine.evaluate(resident_ids=by_instant[instant], at=instant)
        engine.evaluate(resident_ids=chosen, at=now)

        # What people did since: a community reviewing, lifting (type 3) or withdrawing popups.
        open_cases = {(c.resident_id, c.popup_type): c for c in PopupCase.objects.filter(
            resident_id__in=chosen, state__in=PopupCase.OPEN_STATES, dedupe_key__in=["", "upstream"])}
        for resident_id, popup_type, state in plan:
            case = open_cases.get((resident_id, popup_type))
            if case is None or state == PopupCase.State.ACTIVE or (state == PopupCase.State.LIFTED
                                                                   and popup_type != 3):
                continue
            # Every signal behind a current popup is older than 20 hours: acting within them comes
            # after the popup's last cause, so the engine does not raise it again after a withdrawal.
            at = max(now - dt.timedelta(hours=rng.uniform(1, 20)), case.raised_at + dt.timedelta(minutes=5))
            if state == PopupCase.State.UNDER_REVIEW:
                popup_case_transition(case=case, to=state, actor_label="community", reason="社区核实中", at=at)
            elif state == PopupCase.State.LIFTED:
                popup_lift(case=case, actor_label="community", authority="community", at=at,
                           reason="社区排查未发现风险，已签承诺书且核酸阴性，解除弹窗")
            else:
                popup_withdraw(case=case, actor_label="community", at=at, reason=WITHDRAW_REASONS[popup_type])
        counts = PopupCase.objects.filter(resident_id__in=chosen).values_list("state").annotate(n=Count("pk"))
        self.stdout.write("  popups: " + ", ".join(f"{n} {state}" for state, n in sorted(counts))
                          + f"; signals: {signals.summary()}")


def demo_totp_key_base32() -> str:
    import base64

    return base64.b32encode(bytes.fromhex(DEMO_TOTP_KEY_HEX)).decode().rstrip("=")


def _demo_modules() -> list[tuple[str, Any, Any]]:
    """(label, demo module, app config) for each app with a `demo.seed`, in INSTALLED_APPS order."""
    found = []
    for config in apps.get_app_configs():
        if config.name == "healthkit":
            continue
        try:
            module = importlib.import_module(f"{config.name}.demo")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.demo":
                raise
            continue
        found.append((config.label, module, config))
    return found


def _has_rows(config: Any) -> bool:
    """Whether an app's demo step ran, for apps whose tables only their demo fills (others, like
    communities whose tables the core step fills, define `demo.is_loaded()`)."""
    return any(model.objects.exists() for model in config.get_models() if not model._meta.proxy)


# Type 5 (abolished 2022-07-16) was in force then: the demo's historic type-5 popups were active.
DEMO_JULY = dt.datetime(2022, 7, 8, 12, tzinfo=dt.timezone(dt.timedelta(hours=8)))
# Type 1: counties that report local cases in the demo (county codes, as the feeds send them).
RISK_COUNTIES = ["310115", "120112", "131003"]  # 上海市浦东新区, 天津市津南区, 河北省廊坊市广阳区
ARRIVAL_COUNTIES = ["440106", "330106", "510107", "610113"]  # 广州天河, 杭州西湖, 成都武侯, 西安雁塔
BORDER_COUNTY = "533102"  # 云南省德宏州瑞丽市 (land border port)
TYPE3_REASONS = ["时空伴随", "手机号曾在外地使用", "与风险人员同一时空"]
WITHDRAW_REASONS = {
    1: "核实为数据误判：手机号曾在外地使用，本人未到该地区",
    2: "入境隔离信息录入有误，已核实更正",
    3: "核实为大数据误判，本人一直在京",
    4: "核实已在规定时间内完成核酸，检测机构补录",
}


class _DemoSignals:
    """Signal rows for the demo, dated relative to its now; saved in bulk, one list per kind.
    `past` is the instant at which the popups that are now lifted were active."""

    def __init__(self, *, rng: random.Random, now: dt.datetime) -> None:
        self.rng, self.now = rng, now
        self.past = now - dt.timedelta(days=13)
        self.rows: dict[type, list] = {m: [] for m in (Stay, LocalCase, Arrival, QuarantineOrder, MedicalEvent,
                                                       TestResult, PopupAssignment)}
        hours = dt.timedelta(hours=1)
        for county in RISK_COUNTIES:
            # Recent cases keep the counties affected for 4-7 more days; older ones made the
            # lifted popups. Neither reaches the other's stays (see add()).
            for reported in (now - 60 * hours, now - 30 * hours, self.past - 48 * hours):
                self._row(LocalCase, county=county, reported_at=reported, received_at=reported + hours)

    def _row(self, model, **fields) -> None:
        if model is not TestResult:
            fields.setdefault("record_key", f"demo:{uuid.uuid4().hex}")
        self.rows[model].append(model(**fields))

    def _negative(self, resident_id: int, sampled: dt.datetime) -> None:
        self._row(TestResult, resident_id=resident_id, lab="北京市疾控中心", sample_id=f"DEMO{uuid.uuid4().hex[:12]}",
                  sampled_at=sampled, resulted_at=sampled + dt.timedelta(hours=6),
                  received_at=sampled + dt.timedelta(hours=7), result=TestResult.Outcome.NEGATIVE)

    def add(self, *, resident_id: int, popup_type: int, holds_now: bool) -> None:
        """Signals that make `popup_type` hold for the resident now (holds_now), or that made it
        hold at `self.past` and have lapsed since (type 5: in July 2022)."""
        rng, day, hour = self.rng, dt.timedelta(days=1), dt.timedelta(hours=1)
        anchor = self.now if holds_now else self.past
        if popup_type == 1:
            county = rng.choice(RISK_COUNTIES)
            if holds_now and rng.random() < 0.5:
                # Still there: started 2-6 days ago (after the old cases' 7 days), no end yet.
                start = self.now - rng.uniform(2, 6) * day
                self._row(Stay, resident_id=resident_id, county=county, started_at=start, ended_at=None,
                          received_at=start + 12 * hour)
                return
            # Back in the city: left 1-2.5 days before the anchor (now: the recent cases, 7 days
            # from leaving keeps it 4.5+ days; past: old stays end 10+ days ago, before any recent
            # case could count), arrived, and tested negative within the 72 hours (no type 4).
            left = anchor - rng.uniform(24, 60) * hour
            start = left - rng.uniform(1, 4) * day
            self._row(Stay, resident_id=resident_id, county=county, started_at=start, ended_at=left,
                      received_at=left + hour)
            arrived = left + 3 * hour
            self._row(Arrival, resident_id=resident_id, arrived_at=arrived, from_county=county, received_at=arrived)
            self._negative(resident_id, arrived + 4 * hour)
        elif popup_type == 2:
            start = anchor - rng.uniform(1, 6) * day
            end = anchor + rng.uniform(2, 10) * day if holds_now else anchor + rng.uniform(1, 5) * day
            self._row(QuarantineOrder, resident_id=resident_id, starts_at=start, ends_at=end, received_at=start)
        elif popup_type == 3:
            assigned = self.now - rng.uniform(1, 20) * day
            self._row(PopupAssignment, resident_id=resident_id, popup_type=3, reason=rng.choice(TYPE3_REASONS),
                      assigned_at=assigned, received_at=assigned + dt.timedelta(minutes=10))
        elif popup_type == 4:
            # Deadline (72 h) passed at least a day before the anchor; lifted ones tested after.
            trigger = anchor - rng.uniform(96, 240) * hour
            kind = rng.choice(["arrival", "drug_purchase", "clinic_visit"])
            if kind == "arrival":
                self._row(Arrival, resident_id=resident_id, arrived_at=trigger, received_at=trigger,
                          from_county=rng.choice(ARRIVAL_COUNTIES))
            else:
                detail = rng.choice(DRUG_CATEGORIES if kind == "drug_purchase" else SYMPTOMS)
                self._row(MedicalEvent, resident_id=resident_id, kind=kind, detail=detail, occurred_at=trigger,
                          received_at=trigger)
            if not holds_now:
                self._negative(resident_id, self.past + rng.uniform(2, 48) * hour)
        elif popup_type == 5:
            # Left Ruili 2022-06-25 (14 days end 07-09: window) or 07-03..05 (ends at abolition).
            left = (dt.datetime(2022, 6, 25, 6, tzinfo=DEMO_JULY.tzinfo) + rng.uniform(0, 20) * hour
                    if rng.random() < 0.5 else
                    dt.datetime(2022, 7, 3, 8, tzinfo=DEMO_JULY.tzinfo) + rng.uniform(0, 48) * hour)
            self._row(Stay, resident_id=resident_id, county=BORDER_COUNTY, border_port=True,
                      started_at=left - rng.uniform(3, 10) * day, ended_at=left, received_at=left)

    def save(self) -> None:
        for model, rows in self.rows.items():
            model.objects.bulk_create(rows)

    def summary(self) -> str:
        return ", ".join(f"{len(rows)} {model._meta.verbose_name_plural}" for model, rows in self.rows.items())
