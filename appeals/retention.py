"""Forget on schedule: personal data is kept only as long as the work needs it, then anonymised in
place so the statistics (how many appeals of which category, how fast, which popups, which
outcomes) survive without anyone behind them.

One job (appeals.tasks.retention_forget_due, daily), a few set-based statements per kind, each
touching only rows that still hold something to forget: a rerun changes nothing (idempotent).
It lives in the appeals app because that is the one app allowed to see every other (STYLE §1).

What is forgotten, and when (days in settings, RETENTION_*; defaults and reasons there):
- evidence pictures of appeals closed RETENTION_EVIDENCE_DAYS ago: files deleted, rows deleted;
- appeals closed RETENTION_APPEAL_DAYS ago: every free-text and contact field (description,
  address as written, contact phone, close reason, filer's typed words), history notes, call notes;
- clearance tasks closed RETENTION_CLEARANCE_DAYS ago: the resident's confirmation (address,
  symptoms), contact phone, reasons typed by workers, history reasons;
- SMS finished (sent, delivered, not delivered, dead) RETENTION_SMS_DAYS ago: text, phone;
- popups lifted or withdrawn RETENTION_POPUP_DAYS ago: their cause details and the reasons staff typed;
- residents with nothing open and nothing recorded for RETENTION_RESIDENT_DAYS, who came to the
  service through a popup, appeal or task: name, ID (encrypted, masked, keyed hash) and phones;
  the row stays, anonymous, so the popups, results and appeals still count in the statistics;
- typed reasons of the access audit after AUDIT_REASON_RETENTION_DAYS (the audit rows stay: they
  hold no free text and the database refuses to change them);
- expired login and filing sessions (a filing draft names a resident and a phone);
- the admin's change log after RETENTION_ADMIN_LOG_DAYS, and at once for a forgotten person's
  records (its labels are masked names).

Free-text fields are found by type (a CharField or TextField without choices, a JSONField), not
listed by name: a field added later is forgotten too unless it is named in the model's `keep`.
"""

import datetime as dt
import logging
from functools import reduce
from operator import or_

from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import CharField, Exists, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat

from appeals.clearance.models import ClearanceEvent, ClearanceTask
from appeals.models import Appeal, AppealContact, AppealEvent, AppealEvidence
from communities.models import PersonalDataAccessReason, Resident, ResidentPhone
from healthkit import clock
from healthkit.models import (
    Arrival,
    HealthStatusOrder,
    MedicalEvent,
    OutboxDelivery,
    OutboxRecord,
    PopupAssignment,
    PopupCase,
    PopupEvent,
    QuarantineOrder,
    SmsMessage,
    Stay,
    TestRequirement,
    TestResult,
)

logger = logging.getLogger("healthkit.retention")

FORGOTTEN_PREFIX = Resident.FORGOTTEN_PREFIX
RESIDENT_BATCH = 5000  # residents anonymised per transaction
EVIDENCE_BATCH = 5000  # files deleted per run (one storage call each); beat runs daily, reruns finish it


def _blank_fields(model: type[models.Model], keep: set[str] = frozenset()) -> dict[str, object]:
    """Field → empty value for every free-text or JSON field of `model` (not keys, not codes with
    choices, not unique identifiers such as references, not those named in `keep`)."""
    values: dict[str, object] = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or field.is_relation or field.unique or field.name in keep:
            continue
        if isinstance(field, models.JSONField):
            values[field.name] = None if field.null else {}
        elif isinstance(field, models.CharField | models.TextField) and not field.choices:
            values[field.name] = None if field.null else ""
    return values


def _holding_something(values: dict[str, object]) -> Q:
    """Rows where at least one of these fields is not yet empty (what makes a rerun a no-op)."""
    return reduce(or_, (~Q(**{name: empty}) if empty is not None else Q(**{f"{name}__isnull": False})
                        for name, empty in values.items()))


def _blank(queryset: models.QuerySet, keep: set[str] = frozenset()) -> int:
    values = _blank_fields(queryset.model, keep)
    return queryset.filter(_holding_something(values)).update(**values)


def _days(name: str) -> dt.timedelta:
    return dt.timedelta(days=getattr(settings, name))


def evidence_forget(*, now: dt.datetime) -> int:
    """Delete the pictures (files first, then rows) of appeals closed long enough ago."""
    old = AppealEvidence.objects.filter(appeal__status=Appeal.Status.CLOSED,
                                        appeal__closed_at__lt=now - _days("RETENTION_EVIDENCE_DAYS"))
    batch = list(old.order_by("id").values_list("id", "file", "thumbnail")[:EVIDENCE_BATCH])
    for _pk, *names in batch:
        for name in names:
            if name:
                default_storage.delete(name)  # a file already gone is fine: the rerun case
    return AppealEvidence.objects.filter(pk__in=[row[0] for row in batch]).delete()[0]


def appeals_forget(*, now: dt.datetime) -> int:
    closed = Appeal.objects.filter(status=Appeal.Status.CLOSED,
                                   closed_at__lt=now - _days("RETENTION_APPEAL_DAYS"))
    count = _blank(closed, keep={"outcome"})
    _blank(AppealEvent.objects.filter(appeal__in=closed.values("pk")), keep={"actor_label"})
    _blank(AppealContact.objects.filter(appeal__in=closed.values("pk")))
    return count


def clearance_forget(*, now: dt.datetime) -> int:
    closed = ClearanceTask.objects.filter(state__in=ClearanceTask.CLOSED_STATES,
                                          closed_at__lt=now - _days("RETENTION_CLEARANCE_DAYS"))
    count = _blank(closed)
    _blank(ClearanceEvent.objects.filter(task__in=closed.values("pk")),
           keep={"actor_label", "from_state", "to_state", "data"})
    return count


SMS_FINISHED = (SmsMessage.State.SENT, SmsMessage.State.DELIVERED, SmsMessage.State.UNDELIVERED,
                SmsMessage.State.DEAD)


def sms_forget(*, now: dt.datetime) -> int:
    done = SmsMessage.objects.filter(state__in=SMS_FINISHED, created_at__lt=now - _days("RETENTION_SMS_DAYS"))
    return _blank(done, keep={"purpose", "provider_id"})


def popups_forget(*, now: dt.datetime) -> int:
    ended = PopupCase.objects.filter(state__in=(PopupCase.State.LIFTED, PopupCase.State.WITHDRAWN),
                                     lifted_at__lt=now - _days("RETENTION_POPUP_DAYS"))
    count = _blank(ended, keep={"dedupe_key"})
    # What staff typed (engine and feed reasons are the program's words, kept for the statistics).
    _blank(PopupEvent.objects.filter(case__in=ended.values("pk"), actor__isnull=False),
           keep={"actor_label", "from_state", "to_state", "data"})
    return count


def _recent(model: type[models.Model], *conditions: Q) -> Exists:
    return Exists(model.objects.filter(reduce(or_, conditions), resident=OuterRef("pk")))


def residents_forget(*, now: dt.datetime) -> int:
    """Anonymise, in place, residents the service has finished with: they came through a popup,
    an appeal or a clearance task, nothing of theirs is open, and nothing about them (case, result,
    signal, scan, status order, delivery) is more recent than RETENTION_RESIDENT_DAYS."""
    cutoff = now - _days("RETENTION_RESIDENT_DAYS")
    open_appeal = Q(status__in=Appeal.OPEN_STATUSES)
    candidates = (
        Resident.objects.exclude(id_hash__startswith=FORGOTTEN_PREFIX)
        .filter(Exists(PopupCase.objects.filter(resident=OuterRef("pk")))
                | Exists(Appeal.objects.filter(resident=OuterRef("pk")))
                | Exists(ClearanceTask.objects.filter(resident=OuterRef("pk"))))
        .exclude(_recent(PopupCase, Q(state__in=PopupCase.OPEN_STATES), Q(raised_at__gte=cutoff),
                         Q(lifted_at__gte=cutoff)))
        .exclude(_recent(Appeal, open_appeal, Q(created_at__gte=cutoff), Q(closed_at__gte=cutoff)))
        .exclude(_recent(ClearanceTask, Q(state__in=ClearanceTask.OPEN_STATES), Q(closed_at__gte=cutoff)))
        .exclude(_recent(HealthStatusOrder, Q(ends_at__isnull=True), Q(ends_at__gte=cutoff)))
        .exclude(_recent(TestResult, Q(received_at__gte=cutoff)))
        .exclude(_recent(Arrival, Q(received_at__gte=cutoff)))
        .exclude(_recent(Stay, Q(received_at__gte=cutoff), Q(ended_at__isnull=True)))
        .exclude(_recent(QuarantineOrder, Q(received_at__gte=cutoff), Q(ends_at__gte=cutoff)))
        .exclude(_recent(MedicalEvent, Q(received_at__gte=cutoff)))
        .exclude(_recent(PopupAssignment, Q(received_at__gte=cutoff)))
        .exclude(_recent(TestRequirement, Q(received_at__gte=cutoff), Q(deadline_at__gte=cutoff)))
        .exclude(_recent(OutboxDelivery, Q(state__in=(OutboxDelivery.State.PENDING, OutboxDelivery.State.FAILED))))
    )
    scan = _venue_scan_model()
    if scan is not None:
        candidates = candidates.exclude(_recent(scan, Q(scanned_at__gte=cutoff)))
    total, last = 0, 0
    while True:  # batches of RESIDENT_BATCH by key range, each its own short transaction (pk order)
        with transaction.atomic():
            batch = candidates.filter(pk__gt=last).order_by("pk").values("pk")[:RESIDENT_BATCH]
            forgotten = list(Resident.objects.filter(pk__in=batch).select_for_update().order_by("pk")
                             .values_list("pk", flat=True))
            if not forgotten:
                return total
            last = forgotten[-1]
            ResidentPhone.objects.filter(resident__in=forgotten).delete()
            for model, keep in ((HealthStatusOrder, {"status"}), (PopupAssignment, set()),
                                (TestRequirement, {"source_ref"}), (OutboxRecord, set()),
                                (SmsMessage, {"purpose", "provider_id"})):
                _blank(model.objects.filter(resident__in=forgotten), keep=keep)
            Resident.objects.filter(pk__in=forgotten).update(
                name="", id_encrypted="", id_masked="",
                id_hash=Concat(Value(FORGOTTEN_PREFIX), Cast("pk", output_field=CharField())))
        total += len(forgotten)


def _venue_scan_model() -> type[models.Model] | None:
    """Venue scans, through the app registry (appeals does not import venues)."""
    try:
        return apps.get_model("venues", "VenueScan")
    except LookupError:
        return None


def audit_reasons_forget(*, now: dt.datetime) -> int:
    return PersonalDataAccessReason.objects.filter(
        access__at__lt=now - _days("AUDIT_REASON_RETENTION_DAYS")).delete()[0]


def sessions_forget(*, now: dt.datetime) -> int:
    return Session.objects.filter(expire_date__lt=now).delete()[0]


def admin_log_forget(*, now: dt.datetime) -> int:
    """Old change-log rows, and every row about a forgotten resident or their phones, appeals,
    tasks, popups and SMS (its `object_repr` is the masked name the row was saved under)."""
    old = LogEntry.objects.filter(action_time__lt=now - _days("RETENTION_ADMIN_LOG_DAYS")).delete()[0]
    forgotten = Resident.objects.filter(id_hash__startswith=FORGOTTEN_PREFIX)
    about = Q(content_type=ContentType.objects.get_for_model(Resident),
              object_id__in=forgotten.annotate(key=Cast("pk", CharField())).values("key"))
    for model in (ResidentPhone, Appeal, ClearanceTask, PopupCase, SmsMessage, HealthStatusOrder):
        about |= Q(content_type=ContentType.objects.get_for_model(model),
                   object_id__in=model.objects.filter(resident__in=forgotten)
                   .annotate(key=Cast("pk", CharField())).values("key"))
    return old + LogEntry.objects.filter(about).delete()[0]


def retention_forget_due() -> dict[str, int]:
    """Run every step at the clock's now; returns how many rows each changed (0s on a rerun)."""
    now = clock.now()
    done = {
        "evidence": evidence_forget(now=now),
        "appeals": appeals_forget(now=now),
        "clearance_tasks": clearance_forget(now=now),
        "sms": sms_forget(now=now),
        "popups": popups_forget(now=now),
        "residents": residents_forget(now=now),
        "audit_reasons": audit_reasons_forget(now=now),
        "sessions": sessions_forget(now=now),
        "admin_log": admin_log_forget(now=now),
    }
    logger.info("retention: %s", " ".join(f"{k}={v}" for k, v in done.items()))
    return done
