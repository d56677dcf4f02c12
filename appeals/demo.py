"""Demo appeals: every status, channel and category, with call logs, history and a few
screenshots drawn with Pillow. Bulk inserts; runs in well under a second or two."""

import copy
import datetime as dt
import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image, ImageDraw

from appeals.evidence import clean_image
from appeals.models import Appeal, AppealContact, AppealEvent, AppealEvidence, evidence_path
from appeals.services import _reference, priority_for, sla_due
from communities import pii
from communities.models import User
from healthkit import clock
from healthkit.models import PopupCase

N_APPEALS = 160
DESCRIPTIONS = {
    "correction": ["一直在北京没有出京，行程卡四个查询都是绿色，突然弹窗3，请核实。",
                   "I have not left Beijing for a month; all four itinerary queries are green."],
    "emergency_medical": ["母亲在协和医院住院需要陪护，弹窗无法进医院。", "Chemotherapy appointment tomorrow; cannot enter the hospital."],
    "emergency_relative": ["父亲病危在家，需要立即返京。"],
    "emergency_business": ["明天需到单位签署重要合同，弹窗无法进入办公楼。"],
    "stranded": ["十月出差滞留乌鲁木齐已四十多天，希望返京。", "Stranded in Guangzhou since October, wish to return home."],
    "old_phone": ["这个手机号以前在外地用过，我本人一直在北京。"],
    "other": ["核酸已经做了三次都是阴性，弹窗4还在。"],
}
OUTCOMES = [("lifted", "社区核实后已解除弹窗"), ("rejected", "经核查存在风险点位时空关联，需按要求完成核酸"),
            ("no_popup", "来电时弹窗已自动解除")]
# A popup under review is one its community is looking into after the resident appealed.
IN_PROGRESS = ["in_progress", "waiting_resident", "routed"]
# Every legal shape an appeal can take, each given to one demo appeal, so the console pages (and
# the page crawl over them) render all of them: online filing that lets the operator decide the
# community, phone entry without a community, a filer whose phone is not on record, each channel,
# stranded, folded repeats, routed with and without a confirmed community, merged.
SHAPES: tuple[dict, ...] = (
    {"channel": "online", "status": "new", "community": None},
    {"channel": "phone", "status": "in_progress", "community": None},
    {"channel": "online", "status": "new", "community": None, "filer_unconfirmed": True, "popup": None},
    {"channel": "open311", "status": "new"},
    {"channel": "online", "status": "in_progress", "category": "stranded"},
    {"channel": "phone", "status": "new", "repeat_count": 3},
    {"channel": "online", "status": "routed"},
    {"channel": "phone", "status": "routed", "community": None},
    {"channel": "online", "status": "in_progress", "merged_duplicate": True},
    {"channel": "online", "status": "in_progress"},
)


def _screenshots() -> list[bytes]:
    """Three believable phone screenshots: a green code, a popup, a test report."""
    pictures = []
    for title, color in (("健康宝 未见异常", (22, 163, 74)), ("弹窗3 请配合社区核验", (234, 179, 8)),
                         ("核酸检测 阴性", (37, 99, 235))):
        image = Image.new("RGB", (360, 720), (245, 247, 250))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, 0, 360, 60), fill=color)
        draw.rectangle((90, 200, 270, 380), outline=color, width=8)
        for y in range(420, 640, 36):
            draw.rectangle((40, y, 320, y + 14), fill=(210, 214, 220))
        draw.text((16, 20), title.encode("ascii", "ignore").decode() or "Health Kit", fill=(255, 255, 255))
        out = io.BytesIO()
        image.save(out, "PNG")
        pictures.append(clean_image(ContentFile(out.getvalue(), name="s.png")))
    return pictures


def seed(*, rng, stdout) -> None:
    # Popups without an open appeal yet, so a second run adds appeals instead of failing: every
    # popup under review (its appeal is in progress), then active ones, up to N_APPEALS.
    candidates = (PopupCase.objects.exclude(appeals__status__in=Appeal.OPEN_STATUSES)
                  .select_related("resident__community").order_by("pk"))
    under_review = list(candidates.filter(state=PopupCase.State.UNDER_REVIEW))
    active = list(candidates.filter(state=PopupCase.State.ACTIVE)[:max(N_APPEALS - len(under_review), N_APPEALS // 4)])
    popups = sorted(under_review + active, key=lambda p: p.pk)
    if not popups:
        stdout.write("  appeals: no open popups; skipped")
        return
    operators = list(User.objects.filter(role=User.Role.OPERATOR).order_by("username"))
    now = clock.now().replace(microsecond=0)
    categories = list(Appeal.Category.values)
    statuses = ["new"] * 5 + ["in_progress"] * 4 + ["waiting_resident"] * 2 + ["routed"] * 4 + ["closed"] * 4
    appeals, plans, merges = [], [], []
    shapes = iter(SHAPES)
    for index, popup in enumerate(popups):
        resident = popup.resident
        category = categories[index % len(categories)] if index % 3 else "correction"
        reviewed = popup.state == PopupCase.State.UNDER_REVIEW
        status = IN_PROGRESS[index % len(IN_PROGRESS)] if reviewed else statuses[index % len(statuses)]
        shape = {} if reviewed else dict(next(shapes, {}))
        category = shape.pop("category", category)
        status = shape.pop("status", status)
        priority = priority_for(category)
        # Open appeals are mostly fresh (a few breached, as in real life); closed ones older.
        age_hours = rng.uniform(0.2, 20) if status != "closed" and index % 5 else rng.uniform(1, 24 * 6)
        # ... and filed after the popup appeared.
        created = min(max(now - dt.timedelta(hours=age_hours), popup.raised_at + dt.timedelta(minutes=10)), now)
        phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
        unlisted = index % 17 == 0 and not reviewed  # filed without naming the popup
        appeal = Appeal(
            reference=_reference(), resident=resident, popup=None if unlisted else popup,
            # The name and ID number as given (the filer's words): the resident's own.
            claimed_name_encrypted=pii.encrypt(resident.name),
            claimed_id_encrypted=resident.id_encrypted, claimed_id_hash=resident.id_hash,
            claimed_masked=resident.masked,
            popup_type_claimed=popup.popup_type, category=category, priority=priority, status=status,
            channel=rng.choice(["online"] * 6 + ["phone"] * 3 + ["open311"]), community=resident.community,
            address_text=(resident.community.name if resident.community else "")[:200],
            contact_phone_encrypted=pii.encrypt(phone), contact_phone_hash=pii.phone_hash(phone),
            contact_phone_masked=pii.mask_phone(phone), description=rng.choice(DESCRIPTIONS[category]),
            currently_outside_city=category == "stranded", wishes_to_return=category == "stranded",
            outside_since=(created - dt.timedelta(days=rng.randint(32, 60))).date() if category == "stranded" else None,
            repeat_count=rng.choice([0, 0, 0, 1, 2, 5]), created_at=created, sla_due_at=sla_due(priority, created),
            assigned_to=rng.choice(operators) if operators and status != "new" else None,
        )
        merged_duplicate = shape.pop("merged_duplicate", False)
        for name, value in shape.items():  # the shape's own fields win over the random ones
            setattr(appeal, name, value)
        if appeal.community is None:
            appeal.address_text = ""
        if appeal.sla_due_at < now and status != "closed":
            appeal.sla_breached_at = appeal.escalated_at = appeal.sla_due_at + dt.timedelta(minutes=1)
        if status in ("routed", "closed") and resident.community:
            appeal.routed_community = resident.community
            appeal.routed_at = created + dt.timedelta(hours=1)
        if status == "closed":
            # The popup is still open: the appeal did not get it lifted.
            appeal.outcome, appeal.close_reason = OUTCOMES[1]
            appeal.closed_at = min(created + dt.timedelta(hours=rng.uniform(2, 30)), now)
        appeals.append(appeal)
        plans.append(status)
        if merged_duplicate:
            # The resident appealed twice; an operator merged the second into the first.
            duplicate = copy.copy(appeal)
            duplicate.reference, duplicate.repeat_count = _reference(), 0
            duplicate.created_at = min(created + dt.timedelta(minutes=15), now)
            duplicate.status, duplicate.outcome = Appeal.Status.CLOSED, "merged"
            duplicate.closed_at = min(created + dt.timedelta(minutes=50), now)
            duplicate.close_reason = f"Merged into {appeal.reference}"
            duplicate.sla_breached_at = duplicate.escalated_at = None
            appeal.repeat_count += 1
            merges.append((len(appeals), len(appeals) - 1))
            appeals.append(duplicate)
            plans.append("merged")
    with transaction.atomic():
        appeals = Appeal.objects.bulk_create(appeals)
        events, contacts = [], []
        for appeal, status in zip(appeals, plans, strict=True):
            at = appeal.created_at
            events.append(AppealEvent(appeal=appeal, kind="filed", actor_label="resident", at=at,
                                      data={"channel": appeal.channel, "category": appeal.category}))
            if appeal.repeat_count:
                events.append(AppealEvent(appeal=appeal, kind="repeat", actor_label="resident",
                                          at=at + dt.timedelta(minutes=40), data={"repeat_count": appeal.repeat_count}))
            if appeal.assigned_to_id:
                events.append(AppealEvent(appeal=appeal, kind="assigned", actor=appeal.assigned_to, public=False,
                                          actor_label=appeal.assigned_to.username, at=at + dt.timedelta(minutes=30)))
                contacts.append(AppealContact(appeal=appeal, operator=appeal.assigned_to, direction="outbound",
                                              outcome=rng.choice(["reached", "no_answer", "reached"]),
                                              note="已告知需上传行程截图", at=at + dt.timedelta(minutes=35)))
            if status == "waiting_resident":
                events.append(AppealEvent(appeal=appeal, kind="evidence_requested", actor=appeal.assigned_to,
                                          actor_label=getattr(appeal.assigned_to, "username", ""),
                                          at=at + dt.timedelta(minutes=45)))
            if appeal.routed_at:
                events.append(AppealEvent(appeal=appeal, kind="routed", actor=appeal.assigned_to, at=appeal.routed_at,
                                          actor_label=getattr(appeal.assigned_to, "username", ""),
                                          data={"community": appeal.routed_community_id}))
            if appeal.sla_breached_at:
                events += [AppealEvent(appeal=appeal, kind=k, actor_label="sla-sweep", public=False,
                                       at=appeal.sla_breached_at) for k in ("sla_breached", "escalated")]
            if status == "closed":
                events.append(AppealEvent(appeal=appeal, kind="closed", actor=appeal.assigned_to, at=appeal.closed_at,
                                          actor_label=getattr(appeal.assigned_to, "username", ""),
                                          note=appeal.close_reason, data={"outcome": appeal.outcome}))
        for duplicate_at, into_at in merges:
            duplicate, into = appeals[duplicate_at], appeals[into_at]
            duplicate.merged_into = into
            duplicate.save(update_fields=["merged_into"])
            events += [
                AppealEvent(appeal=into, kind="merged_in", actor=into.assigned_to, at=duplicate.closed_at,
                            actor_label=getattr(into.assigned_to, "username", ""),
                            data={"from": duplicate.reference, "evidence_moved": 0}),
                AppealEvent(appeal=duplicate, kind="merged", actor=into.assigned_to, at=duplicate.closed_at,
                            actor_label=getattr(into.assigned_to, "username", ""), data={"into": into.reference}),
            ]
        AppealEvent.objects.bulk_create(events)
        AppealContact.objects.bulk_create(contacts)
        pictures = _screenshots()
        evidence = []
        for appeal in appeals[::4]:
            for picture in pictures[: rng.randint(1, 3)]:
                name = default_storage.save(evidence_path(None, f"x.{picture.extension}"), ContentFile(picture.data))
                thumb = default_storage.save(evidence_path(None, "t.jpg"), ContentFile(picture.thumbnail))
                evidence.append(AppealEvidence(
                    appeal=appeal, file=name, thumbnail=thumb, content_type=picture.content_type, width=picture.width,
                    height=picture.height, size_bytes=len(picture.data), sha256=picture.sha256))
        AppealEvidence.objects.bulk_create(evidence)
    stdout.write(f"  appeals: {len(appeals)} appeals, {len(events)} events, {len(evidence)} screenshots")

