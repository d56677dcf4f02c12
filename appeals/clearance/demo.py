"""Demo data: worker1's communities get believable clearance tasks in every state."""

import datetime as dt
import hashlib
import random
import uuid

from django.core import signing
from django.urls import reverse

from appeals.clearance.models import ClearanceEvent, ClearanceLink, ClearanceTask
from appeals.models import Appeal
from communities import pii
from communities.models import Resident, User
from healthkit import clock, engine
from healthkit.models import (
    Arrival,
    HealthStatusOrder,
    LocalCase,
    PopupAssignment,
    PopupCase,
    Stay,
    TestRequirement,
    TestResult,
)
from healthkit.services import popup_case_transition, popup_lift, popup_raise

# Counties whose local cases give worker1's residents back in the city their popup 1 (not those
# of the city-wide demo, so neither set of stays meets the other's cases).
RISK_COUNTIES = ["420111", "220102", "650102"]  # 武汉市洪山区, 长春市南关区, 乌鲁木齐市天山区
PLACES = ["河北省保定市莲池区", "上海市浦东新区", "天津市津南区", "广东省广州市海珠区", "内蒙古呼和浩特市新城区"]
ADDRESSES = ["3号楼2单元501", "12号楼1单元302", "7号院4号楼606", "南里18号楼3门201", "西区5号楼1102"]
FINDINGS = {
    "high_risk": "与确诊病例同一时空，密接",
    "medium_risk": "与风险点位同时段停留超过15分钟",
    "listed_area": "途经其他涉疫地区",
    "nothing_found": "手机信令误判，本人一直在京",
}

# (state, origin, priority, outcome) — one row per demo task, in every state.
# Routed appeals get their task too (state spread over open / confirmed / info_requested).
PLAN = [
    ("open", "risk_link", 3, ""), ("open", "in_city", 3, ""), ("open", "misattribution", 3, ""),
    ("open", "stranded", 2, ""), ("open", "risk_link", 3, ""),
    ("confirmed", "misattribution", 3, ""), ("confirmed", "stranded", 2, ""), ("confirmed", "risk_link", 3, ""),
    ("info_requested", "in_city", 3, ""),
    ("measures", "risk_link", 3, "high_risk"), ("measures", "risk_link", 3, "medium_risk"),
    ("measures", "risk_link", 3, "listed_area"), ("measures", "risk_link", 3, "nothing_found"),
    ("measures", "checkpoint", 3, ""),
    ("lifted", "misattribution", 3, ""), ("lifted", "risk_link", 3, "nothing_found"),
    ("rejected", "stranded", 3, ""), ("closed", "in_city", 3, ""),
    # a self-drive return with no popup on record: accepted, nothing lifted
    ("accepted", "checkpoint", 3, ""),
]


def _confirmation(rng: random.Random, now: dt.datetime, outside: bool) -> dict:
    return {
        "location": "outside" if outside else "in_city",
        "current_place": rng.choice(PLACES) if outside else "北京市",
        "outside_since": (now.date() - dt.timedelta(days=rng.randint(8, 45))).isoformat() if outside else None,
        "return_date": (now.date() + dt.timedelta(days=rng.randint(1, 6))).isoformat() if outside else None,
        "return_means": rng.choice(["train", "flight", "car"]) if outside else "already_back",
        "address": rng.choice(ADDRESSES),
        "health": {"symptoms": [], "contact_with_case": False, "declared_true": True},
        "submitted_at": (now - dt.timedelta(hours=rng.randint(1, 20))).isoformat(),
    }


def seed(*, rng: random.Random, stdout) -> None:
    worker = User.objects.filter(username="worker1").first()
    if worker is None or ClearanceTask.objects.exists():
        return
    communities = list(worker.communities.order_by("pk"))
    residents = list(Resident.objects.filter(community__in=communities).order_by("pk")[:200])
    # Residents with no popup at all (an earlier one's signals could hold or be re-raised).
    busy = set(PopupCase.objects.values_list("resident_id", flat=True))
    busy |= set(Appeal.objects.values_list("resident_id", flat=True))
    free = [r for r in residents if r.pk not in busy]
    rng.shuffle(free)
    now = clock.now()

    # Each planned task gets its own fresh popup, made as production makes them: type 1 of a
    # resident back in the city and type 3 (upstream assignment) by the engine from signals, a
    # misattributed type 1 (a phone number once used elsewhere) as the upstream match raises it.
    plan = PLAN[: len(free)]
    with_popup = [(row, resident) for row, resident in zip(plan, free, strict=False) if row[0] != "accepted"]
    without_popup = [(row, resident) for row, resident in zip(plan, free, strict=False) if row[0] == "accepted"]
    signals: dict[type, list] = {m: [] for m in (Stay, LocalCase, Arrival, TestResult, PopupAssignment)}
    earlier = now - dt.timedelta(days=13)  # the closed task's popup held then and has lapsed since
    for (state, origin, _priority, _outcome), resident in with_popup:
        raised = now - dt.timedelta(hours=rng.uniform(20, 96)) if state != "closed" else earlier
        if origin == "in_city":
            _back_from_risk_county(signals, resident=resident, county=rng.choice(RISK_COUNTIES), raised=raised)
        elif origin == "misattribution":
            popup_raise(resident=resident, popup_type=1, source=PopupCase.Source.UPSTREAM, dedupe_key="upstream",
                        cause={"rule": "upstream_assignment", "reason": "手机号曾在外地使用"},
                        actor_label="upstream", reason="大数据比对：手机号曾在外地使用", at=raised)
        else:
            signals[PopupAssignment].append(PopupAssignment(
                resident=resident, popup_type=3, reason=rng.choice(["时空伴随", "到访风险点位"]),
                assigned_at=raised - dt.timedelta(minutes=10), received_at=raised,
                record_key=f"demo:{uuid.uuid4().hex}"))
    for model, rows in signals.items():
        model.objects.bulk_create(rows)
    lapsing = [r.pk for (state, *_), r in with_popup if state == "closed"]
    engine.evaluate(resident_ids=lapsing, at=earlier)
    engine.evaluate(resident_ids=[r.pk for row, r in with_popup if r.pk not in lapsing], at=now)
    opened = {(p.resident_id, p.popup_type): p for p in PopupCase.objects.filter(
        resident__in=[r for _row, r in with_popup], state__in=PopupCase.OPEN_STATES)}
    popups = [opened[(r.pk, 1 if origin in ("in_city", "misattribution") else 3)]
              for (_state, origin, *_), r in with_popup]

    rows = [(*row, popup, None, popup.resident_id, popup.raised_at)
            for (row, _resident), popup in zip(with_popup, popups, strict=True)]
    rows += [(*row, None, None, resident.pk, now - dt.timedelta(days=4)) for row, resident in without_popup]
    # Appeals the hotline routed to these communities (the demo bulk-creates them, so no task
    # was opened on commit): each gets its task, as appeal_route would have done.
    routed = (Appeal.objects.filter(status=Appeal.Status.ROUTED, routed_community__in=communities,
                                    popup__state__in=PopupCase.OPEN_STATES, merged_into__isnull=True)
              .select_related("popup").order_by("pk"))
    for index, appeal in enumerate(routed):
        state = ("open", "confirmed", "open", "info_requested")[index % 4]
        rows.append((state, "appeal", min(appeal.priority, 3), "", appeal.popup, appeal, appeal.resident_id,
                     appeal.popup.raised_at))
    community_of = dict(Resident.objects.filter(pk__in=[r[6] for r in rows]).values_list("pk", "community_id"))
    routed_to = {r[5].pk: r[5].routed_community_id for r in rows if r[5] is not None}

    tasks = []
    for state, origin, priority, outcome, popup, appeal, resident_id, since in rows:
        created = since + dt.timedelta(minutes=rng.randint(2, 60))
        if state in ("open", "confirmed", "info_requested"):
            # Most tasks still waiting for the community are within their SLA; a few are late.
            created = max(created, now - dt.timedelta(hours=rng.choice([3, 6, 10, 16, 20, 30])))
        closed = state in ("lifted", "accepted", "rejected", "closed")
        confirmed = state not in ("open",) and origin != "checkpoint"
        outside = origin == "stranded" or (appeal is not None and appeal.currently_outside_city)
        phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
        sla_hours = 4 if priority == 1 else 24
        tasks.append(ClearanceTask(
            resident_id=resident_id,
            community_id=routed_to[appeal.pk] if appeal else community_of[resident_id],
            popup=popup, appeal=appeal, origin=origin, state=state, priority=priority, created_at=created,
            sla_due_at=created + dt.timedelta(hours=sla_hours),
            escalated_at=created + dt.timedelta(hours=sla_hours) if created + dt.timedelta(hours=sla_hours) < now
            and state in ClearanceTask.AWAITING_STATES else None,
            sla_breached_at=created + dt.timedelta(hours=sla_hours) if created + dt.timedelta(hours=sla_hours) < now
            and state in ClearanceTask.AWAITING_STATES else None,
            outside_since=(appeal.outside_since if appeal else None) or (
                now.date() - dt.timedelta(days=38) if origin == "stranded" else None),
            wishes_to_return=origin == "stranded" or bool(appeal and appeal.wishes_to_return),
            confirmation=_confirmation(rng, now, outside) if confirmed else {},
            confirmed_at=created + dt.timedelta(hours=3) if confirmed else None,
            contact_phone_encrypted=pii.encrypt(phone) if confirmed else "",
            contact_phone_masked=pii.mask_phone(phone) if confirmed else "",
            commitment_required=origin == "checkpoint" or outcome == "nothing_found",
            commitment_signed_at=created + dt.timedelta(hours=4)
            if closed and (outcome == "nothing_found" or origin == "checkpoint") else None,
            outcome=outcome, investigated_at=created + dt.timedelta(hours=5) if outcome else None,
            measures_until=created + dt.timedelta(days=7) if outcome in ("high_risk", "medium_risk", "listed_area")
            else None,
            negative_test_after=created + dt.timedelta(hours=5) if state == "measures" else None,
            decided_at=now - dt.timedelta(hours=2) if closed else None,
            decided_by=worker if state in ("lifted", "accepted", "rejected") else None,
            decision_reason={"lifted": "核实无风险，同意返京", "rejected": "所在地7日内有本土病例，请满7天后再申请",
                             "accepted": "自驾返京，承诺书及两次核酸已完成；无弹窗记录",
                             "closed": "弹窗已由其他途径解除"}.get(state, ""),
            closed_at=now - dt.timedelta(hours=2) if closed else None,
        ))
    tasks = ClearanceTask.objects.bulk_create(tasks)
    orders = [
        HealthStatusOrder(resident_id=t.resident_id, status="red" if t.outcome == "high_risk" else "yellow",
                          starts_at=t.investigated_at, ends_at=t.measures_until, ordered_by=worker,
                          reason=f"风险排查 {t.reference}")
        for t in tasks if t.state == "measures" and t.outcome in ("high_risk", "medium_risk")
    ]
    HealthStatusOrder.objects.bulk_create(orders)

    events, links, requirements = [], [], []
    for task in tasks:
        events.append(ClearanceEvent(task=task, kind="opened", to_state="open", actor_label="clearance-sweep",
                                     data={"origin": task.origin}, at=task.created_at))
        link_at = task.created_at + dt.timedelta(minutes=1)
        links.append(ClearanceLink(
            task=task, token_hash=hashlib.sha256(f"demo-{task.pk}-{rng.random()}".encode()).hexdigest(),
            created_at=link_at, expires_at=link_at + dt.timedelta(hours=72),
            used_at=task.confirmed_at,
        ))
        events.append(ClearanceEvent(task=task, kind="link_sent", actor_label="system", at=link_at))
        if task.confirmed_at:
            events.append(ClearanceEvent(task=task, kind="confirmed", from_state="open", to_state="confirmed",
                                         actor_label="resident", at=task.confirmed_at))
        if task.state == "info_requested":
            events.append(ClearanceEvent(task=task, kind="info_requested", actor=worker, actor_label="worker1",
                                         reason="请提供返京车次和近48小时核酸报告",
                                         at=task.confirmed_at + dt.timedelta(hours=1)))
        if task.investigated_at:
            events.append(ClearanceEvent(task=task, kind="investigated", to_state="measures", actor=worker,
                                         actor_label="worker1", reason=FINDINGS.get(task.outcome, ""),
                                         data={"outcome": task.outcome}, at=task.investigated_at))
            if task.outcome == "listed_area" and task.state == "measures":
                for day in (1, 2, 4, 7):
                    trigger = task.investigated_at + dt.timedelta(days=day - 1)
                    requirements.append(TestRequirement(
                        resident_id=task.resident_id, kind="investigation", trigger_at=trigger,
                        deadline_at=trigger + dt.timedelta(hours=48), reason=f"风险排查 {task.reference}，第{day}天检测",
                        source_ref=f"clearance:{task.pk}:day{day}", received_at=task.investigated_at))
        if task.closed_at:
            events.append(ClearanceEvent(task=task, kind=task.state, to_state=task.state, actor=task.decided_by,
                                         actor_label="worker1" if task.decided_by else "clearance-sweep",
                                         reason=task.decision_reason, at=task.closed_at))
        if task.escalated_at:
            events.append(ClearanceEvent(task=task, kind="escalated", actor_label="sla-sweep", at=task.escalated_at))
        if task.state in ("open", "confirmed") and task.priority < 3:
            events.append(ClearanceEvent(task=task, kind="call", actor=worker, actor_label="worker1",
                                         reason="已电话联系，居民表示今日内填写", data={"direction": "outbound",
                                                                                 "outcome": "reached"},
                                         at=task.created_at + dt.timedelta(minutes=40)))
    ClearanceEvent.objects.bulk_create(events)
    ClearanceLink.objects.bulk_create(links)
    _signed_letters(tasks, links)
    TestRequirement.objects.bulk_create(requirements, ignore_conflicts=True)
    _popup_history(tasks, worker=worker)
    # The residents in measures took the tests due so far; the engine then sees the demo's now.
    TestResult.objects.bulk_create([
        TestResult(resident_id=r.resident_id, lab="北京市疾控中心", sample_id=f"DEMO{uuid.uuid4().hex[:12]}",
                   sampled_at=r.trigger_at + dt.timedelta(hours=2), resulted_at=r.trigger_at + dt.timedelta(hours=8),
                   received_at=r.trigger_at + dt.timedelta(hours=9), result=TestResult.Outcome.NEGATIVE)
        for r in requirements if r.trigger_at + dt.timedelta(hours=9) <= now])
    engine.evaluate(resident_ids=[t.resident_id for t in tasks], at=now)
    stdout.write(f"  clearance: {len(tasks)} tasks for worker1's {len(communities)} communities")
    # One working resident link, so the demo can be walked from the resident's side too.
    waiting = next((t for t in tasks if t.state == "open"), None)
    if waiting is not None:
        raw = f"demo{rng.getrandbits(128):032x}"
        ClearanceLink.objects.filter(task=waiting, used_at__isnull=True).update(revoked_at=now)
        ClearanceLink.objects.create(task=waiting, token_hash=hashlib.sha256(raw.encode()).hexdigest(), created_at=now,
                                     expires_at=now + dt.timedelta(hours=72))
        token = signing.Signer(salt="clearance.link", sep=".").sign(raw)
        stdout.write(f"  clearance: a resident's link for {waiting.reference}: "
                     f"{reverse('clearance:link', args=[token])} (valid 72 h, works once)")


def _back_from_risk_county(signals: dict, *, resident: Resident, county: str, raised: dt.datetime) -> None:
    """A stay in `county`, which reported a local case at `raised` (popup 1 from then for 7 days
    after leaving), then the arrival back and a negative test within 72 hours (no popup 4)."""
    hour = dt.timedelta(hours=1)
    left = raised - 11 * hour
    signals[Stay].append(Stay(resident=resident, county=county, started_at=left - 3 * 24 * hour, ended_at=left,
                              received_at=left + hour, record_key=f"demo:{uuid.uuid4().hex}"))
    signals[LocalCase].append(LocalCase(county=county, reported_at=raised, received_at=raised,
                                        record_key=f"demo:{uuid.uuid4().hex}"))
    arrived = left + 2 * hour
    signals[Arrival].append(Arrival(resident=resident, arrived_at=arrived, from_county=county, received_at=arrived,
                                    record_key=f"demo:{uuid.uuid4().hex}"))
    signals[TestResult].append(TestResult(
        resident=resident, lab="北京市疾控中心", sample_id=f"DEMO{uuid.uuid4().hex[:12]}",
        sampled_at=arrived + 2 * hour, resulted_at=arrived + 6 * hour, received_at=arrived + 7 * hour,
        result=TestResult.Outcome.NEGATIVE))


def _signed_letters(tasks: list[ClearanceTask], links: list[ClearanceLink]) -> None:
    """Each signed letter's record (who, when, which link, the letter text's digest), as the
    service writes it; the first one after a refused try with another name."""
    from django.conf import settings
    from django.utils import translation

    from appeals.clearance.services import (
        COMMITMENT_LETTER_VERSION,
        commitment_letter_text,
        letter_digest,
    )

    with translation.override(settings.LANGUAGE_CODE):
        digest = letter_digest(commitment_letter_text())
    link_of = {link.task_id: link for link in links}
    events = []
    for index, task in enumerate(t for t in tasks if t.commitment_signed_at):
        link = link_of[task.pk]
        if index == 0:
            events.append(ClearanceEvent(task=task, kind="signature_refused", actor_label="resident",
                                         data={"link": link.pk},
                                         at=task.commitment_signed_at - dt.timedelta(minutes=6)))
        events.append(ClearanceEvent(task=task, kind="commitment_signed", actor_label="resident", data={
            "version": COMMITMENT_LETTER_VERSION, "link": link.pk, "link_purpose": link.purpose,
            "link_sent_at": link.created_at.isoformat(), "name_matched": True, "letter_sha256": digest},
            at=task.commitment_signed_at))
    ClearanceEvent.objects.bulk_create(events)


def _popup_history(tasks: list[ClearanceTask], *, worker: User) -> None:
    """What the tasks did to their popups, through the popup services, at the tasks' times: the
    resident's confirmation puts it under review; the community lifts it, or rejects and it is
    active again. A closed task's popup lapsed by its rule: the engine lifts it (at now)."""
    for task in tasks:
        popup = task.popup
        if popup is None:
            continue
        # (a checkpoint return is handled by the community from the start)
        reviewed_at = task.confirmed_at or task.investigated_at or task.created_at
        if task.state != "open" and reviewed_at is not None and popup.state == PopupCase.State.ACTIVE:
            popup_case_transition(case=popup, to=PopupCase.State.UNDER_REVIEW, actor_label="clearance",
                                  reason="居民已向社区确认信息", data={"clearance_task": task.pk},
                                  at=max(reviewed_at, popup.raised_at))
        if task.state == "lifted":
            popup_lift(case=popup, actor=worker, authority="community", reason=task.decision_reason,
                       data={"clearance_task": task.pk}, at=task.decided_at)
        elif task.state == "rejected" and popup.state == PopupCase.State.UNDER_REVIEW:
            popup_case_transition(case=popup, to=PopupCase.State.ACTIVE, actor=worker, reason=task.decision_reason,
                                  data={"clearance_task": task.pk}, at=task.decided_at)
