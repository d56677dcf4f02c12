"""The popup core: policy as data, popup cases with their event log, test results, SMS."""

from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import (
    ArrayField,
    DateTimeRangeField,
    RangeBoundary,
    RangeOperators,
)
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Cast, Concat
from django.utils.translation import gettext_lazy as _

from communities.models import Resident
from healthkit import clock


class PopupType(models.IntegerChoices):
    RISK_COUNTY = 1, _("1 · Stayed in a county with local cases")
    ENTRY_QUARANTINE = 2, _("2 · In entry quarantine")
    RISK_LINK = 3, _("3 · Spatio-temporal link, risk investigation")
    MISSED_TEST = 4, _("4 · Missed a required nucleic-acid test")
    BORDER_PORT = 5, _("5 · Stayed in a county with a land border port")


class TsTzRange(models.Func):
    function = "TSTZRANGE"
    output_field = DateTimeRangeField()


class PopupPolicy(models.Model):
    """One version of the rule for one popup type, in force over [effective_from, effective_to).

    `params` keys (all optional, read by the engine): window_days, case_free_days, deadline_hours,
    auto_lift (bool), lift_authority ("engine" | "community" | "lab"), abolished (bool),
    test_days (list of day numbers), description.
    """

    popup_type = models.PositiveSmallIntegerField(_("popup type"), choices=PopupType.choices)
    version = models.CharField(_("version"), max_length=32)
    effective_from = models.DateTimeField(_("effective from"))
    effective_to = models.DateTimeField(_("effective to"), null=True, blank=True)
    params = models.JSONField(_("parameters"), default=dict)
    source = models.CharField(_("source / notice"), max_length=200, blank=True)

    class Meta:
        ordering = ["popup_type", "effective_from"]
        verbose_name = _("popup policy")
        verbose_name_plural = _("popup policies")
        constraints = [
            models.UniqueConstraint(fields=["popup_type", "version"], name="policy_unique_version"),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__gt=models.F("effective_from")),
                name="policy_window_ordered",
            ),
            # One version in force per type at any instant: the engine joins every version to
            # the records, clipped to its window, so overlapping windows would apply both.
            ExclusionConstraint(
                name="policy_one_version_at_a_time",
                expressions=[
                    ("popup_type", RangeOperators.EQUAL),
                    (TsTzRange("effective_from", "effective_to", RangeBoundary()), RangeOperators.OVERLAPS),
                ],
                violation_error_message=_(
                    "Another version of this popup type is in force during part of this period: end it "
                    "(effective to) where this one starts."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_popup_type_display()} [{self.version}]"

    # Parameters the engine cannot do without, per type (see healthkit.engine._INTERVALS).
    REQUIRED_PARAMS = {1: ("window_days",), 4: ("deadline_hours", "triggers"), 5: ("window_days",)}
    # The spans the engine reads, at most a year.
    PARAM_LIMITS = {"window_days": 366, "case_free_days": 366, "deadline_hours": 366 * 24}

    def clean(self) -> None:
        """A version missing a parameter its rule reads would silently change what the engine
        does (e.g. a type-4 version without triggers counts no arrival): refuse it here."""
        super().clean()
        params = self.params if isinstance(self.params, dict) else {}
        if not isinstance(self.params, dict):
            raise ValidationError({"params": _("The parameters must be a JSON object.")})
        if params.get("abolished"):
            return
        missing = [key for key in self.REQUIRED_PARAMS.get(self.popup_type, ()) if params.get(key) in (None, "", [])]
        if missing:
            raise ValidationError({"params": _("Missing for this popup type: %(keys)s.") % {"keys": ", ".join(missing)}})
        # The engine reads these as whole numbers (SQL ::int, make_interval): text, a fraction, a
        # negative or a far-future span would stop every evaluation or date a popup past any calendar.
        for key, most in self.PARAM_LIMITS.items():
            value = params.get(key)
            if value is not None and not (type(value) is int and 1 <= value <= most):
                raise ValidationError({"params": _("%(key)s must be a whole number from 1 to %(most)d.") % {
                    "key": key, "most": most}})

    @property
    def abolished(self) -> bool:
        return bool(self.params.get("abolished"))


class PopupCase(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        UNDER_REVIEW = "under_review", _("Under review")
        LIFTED = "lifted", _("Lifted")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    class Source(models.TextChoices):
        ENGINE = "engine", _("Rules engine")
        UPSTREAM = "upstream", _("Upstream big-data match")
        VENUE = "venue", _("Venue exposure")
        MANUAL = "manual", _("Entered by staff")

    OPEN_STATES = (State.ACTIVE, State.UNDER_REVIEW)
    TRANSITIONS: dict[str, set[str]] = {
        State.ACTIVE: {State.UNDER_REVIEW, State.LIFTED, State.WITHDRAWN},
        State.UNDER_REVIEW: {State.ACTIVE, State.LIFTED, State.WITHDRAWN},
        State.LIFTED: set(),
        State.WITHDRAWN: set(),
    }

    # resident, policy (and PopupEvent.case, venues.Exposure's references) are held by set-wise
    # triggers (migration 0023), not foreign-key constraints: PostgreSQL checks a foreign key row
    # by row with a row lock on the parent, which was more than half of raising 50,000 venue
    # popups. The resident is indexed by popup_resident_seek_idx (the automatic index would
    # repeat it); nothing reads popups by policy but a policy's delete guard (popup_policy_idx).
    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="popups",
                                 db_index=False, db_constraint=False)
    popup_type = models.PositiveSmallIntegerField(_("popup type"), choices=PopupType.choices)
    # Separates independent causes of the same type (e.g. two risk venues); "" for the usual one.
    dedupe_key = models.CharField(_("cause key"), max_length=120, blank=True, default="")
    cause = models.JSONField(_("cause"), default=dict, blank=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    state = models.CharField(_("state"), max_length=14, choices=State.choices, default=State.ACTIVE)
    policy = models.ForeignKey(PopupPolicy, verbose_name=_("policy"), on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                               db_index=False, db_constraint=False)
    raised_at = models.DateTimeField(_("raised at"))
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    updated_at = clock.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-raised_at"]
        verbose_name = _("popup case")
        verbose_name_plural = _("popup cases")
        constraints = [
            models.UniqueConstraint(
                fields=["resident", "popup_type", "dedupe_key"],
                condition=Q(state__in=["active", "under_review"]),
                name="popup_one_open_per_cause",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["lifted", "withdrawn"], lifted_at__isnull=False)
                | Q(state__in=["active", "under_review"], lifted_at__isnull=True),
                name="popup_lifted_at_matches_state",
            ),
        ]
        indexes = [
            # A resident's popups by state (the engine), and a community worker's popup list
            # newest first: its residents' popups found here, the cursor `id < …` an index
            # condition (selectors.popups_of).
            models.Index(fields=["resident", "state", "id"], name="popup_resident_seek_idx"),
            # The sweep and the queues scan open cases by type.
            models.Index(fields=["popup_type", "raised_at"], name="popup_open_type_idx",
                         condition=Q(state__in=["active", "under_review"])),
            # The dashboard's refresh reads the popups raised or ended in its last few days.
            models.Index(fields=["raised_at"], name="popup_raised_idx"),
            models.Index(fields=["lifted_at"], name="popup_ended_idx", condition=Q(lifted_at__isnull=False)),
            # A policy's delete page counts the popups it protects (healthkit.admin_site).
            models.Index(fields=["policy"], name="popup_policy_idx", condition=Q(policy__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_popup_type_display()} ({self.get_state_display()})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class PopupEvent(models.Model):
    """Append-only history of a popup case: who did what, when and why (the engine's 'why' too)."""

    class Kind(models.TextChoices):
        RAISED = "raised", _("Raised")
        REVIEW_STARTED = "review_started", _("Review started")
        REJECTED = "rejected", _("Review rejected, back to active")
        LIFTED = "lifted", _("Lifted")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        NOTE = "note", _("Note")
        CAUSE_UPDATED = "cause_updated", _("Cause updated")

    # Held by a set-wise trigger (migration 0023), as PopupCase.resident; CASCADE is the ORM's.
    case = models.ForeignKey(PopupCase, verbose_name=_("popup"), on_delete=models.CASCADE, related_name="events",
                             db_constraint=False)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    from_state = models.CharField(_("from state"), max_length=14, blank=True)
    to_state = models.CharField(_("to state"), max_length=14, blank=True)
    # Most events have no actor (engine, exposure job): the reference is held set-wise like
    # `case`, and indexed only where there is one (popupevent_actor_idx).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("actor"), on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                              db_index=False, db_constraint=False)
    actor_label = models.CharField(_("actor label"), max_length=64, blank=True, help_text=_("engine, upstream feed, ..."))
    reason = models.TextField(_("reason"), blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    at = models.DateTimeField(_("at"))
    recorded_at = clock.DateTimeField(_("recorded at"), auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("popup event")
        verbose_name_plural = _("popup events")
        indexes = [
            # healthkit.notify.popup_closed_notify: recent lifts and withdrawals, however made
            models.Index(fields=["at"], name="popupevent_closed_at_idx",
                         condition=Q(kind__in=["lifted", "withdrawn"])),
            models.Index(fields=["actor"], name="popupevent_actor_idx", condition=Q(actor__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} @ {clock.local_text(self.at, '%Y-%m-%d %H:%M')}"


class TestResult(models.Model):
    class Outcome(models.TextChoices):
        NEGATIVE = "negative", _("Negative")
        POSITIVE = "positive", _("Positive")

    # The reference to the resident is held by set-wise triggers (migration 0016), not by a
    # foreign-key constraint: PostgreSQL checks a foreign key row by row at commit (an index probe
    # and a row lock per result, about a third of a bulk ingest's database time); the triggers
    # check a whole statement's rows in one anti-join, and a resident delete waits for every
    # transaction writing results, then refuses if any refers to it. PROTECT still applies in the ORM.
    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="test_results",
                                 db_index=False, db_constraint=False)
    # Opaque identifiers, compared byte by byte (collation "C", migration 0031): every insert
    # walks the unique key (lab, sample id, resident), and under any other collation each text
    # comparison goes through the locale's strcoll; their order means nothing to a reader.
    lab = models.CharField(_("lab"), max_length=64, db_collation="C")
    sample_id = models.CharField(_("sample id"), max_length=64, db_collation="C")
    sampled_at = models.DateTimeField(_("sampled at"))
    resulted_at = models.DateTimeField(_("resulted at"))
    received_at = models.DateTimeField(_("received at"), help_text=_("A result counts from when it is on record."))
    result = models.CharField(_("result"), max_length=8, choices=Outcome.choices)
    from_other_province = models.BooleanField(_("synced from another province"), default=False)
    # A lab that sends the same sample again with another result is correcting it: both rows are
    # kept, the earlier one marked superseded from when the correction arrived (history), and the
    # engine reads only the result current at the instant it evaluates.
    superseded_at = models.DateTimeField(
        _("superseded at"), null=True, blank=True,
        help_text=_("The lab sent a corrected result for this sample then; the correction counts from that moment."))

    class Meta:
        ordering = ["-sampled_at"]
        verbose_name = _("test result")
        verbose_name_plural = _("test results")
        constraints = [
            models.UniqueConstraint(fields=["lab", "sample_id", "resident"], condition=Q(superseded_at__isnull=True),
                                    name="result_unique_current_sample"),
            models.CheckConstraint(condition=Q(resulted_at__gte=models.F("sampled_at")), name="result_after_sample"),
        ]
        # (resident, sampled_at) serves rule 4 ("a negative sampled after the trigger"), the
        # health code (latest by sampling) and clearance; it also covers the resident foreign
        # key, so the automatic FK index is switched off (one index less on a hot insert path).
        indexes = [
            models.Index(fields=["resident", "sampled_at"], name="result_resident_sampled_idx"),
            # Ingest asks whether a result sent again is a retry of one already superseded (a late
            # retry of the original must not undo its correction): only the few superseded rows.
            models.Index(fields=["lab", "sample_id", "resident"], condition=Q(superseded_at__isnull=False),
                         name="result_superseded_sample_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.lab}/{self.sample_id} {self.get_result_display()}"


class HealthStatusOrder(models.Model):
    """A yellow or red status ordered for a period (home observation, centralised observation)."""

    class Status(models.TextChoices):
        YELLOW = "yellow", _("Yellow · home observation")
        RED = "red", _("Red · centralised observation")

    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="status_orders")
    status = models.CharField(_("status"), max_length=6, choices=Status.choices)
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200)
    ordered_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("ordered by"), on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = clock.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        verbose_name = _("health status order")
        verbose_name_plural = _("health status orders")
        indexes = [models.Index(fields=["resident", "starts_at"], name="status_resident_idx")]

    def __str__(self) -> str:
        return f"{self.get_status_display()} {clock.local_text(self.starts_at, '%Y-%m-%d')}"


class SmsMessage(models.Model):
    """Transactional SMS outbox: written with the change that causes it, delivered by Celery once."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed, will retry")
        DEAD = "dead", _("Gave up")
        # from the gateway's delivery receipt (healthkit.sms.sms_receipts_record), after SENT
        DELIVERED = "delivered", _("Delivered")
        UNDELIVERED = "undelivered", _("Not delivered")

    idempotency_key = models.CharField(_("idempotency key"), max_length=120, unique=True)
    purpose = models.CharField(_("purpose"), max_length=40)
    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    phone_encrypted = models.TextField(_("phone encrypted"), editable=False)
    phone_masked = models.CharField(_("phone"), max_length=16)
    # What the admin, the console and backups see: the text with its secret (one-time code, link
    # token) masked. The full text waits encrypted in `pending_encrypted` until it is sent (or
    # given up), then that field is wiped, so no stored text still opens a link or passes a code.
    body = models.TextField(_("text"))
    pending_encrypted = models.TextField(_("pending encrypted"), blank=True, default="", editable=False)
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), db_index=True)
    # Non-urgent news written during quiet hours: not sent before this (healthkit/notify.py).
    not_before = models.DateTimeField(_("not before"), null=True, blank=True)
    provider_id = models.CharField(_("provider id"), max_length=64, blank=True)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    created_at = clock.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivery receipt at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("SMS message")
        verbose_name_plural = _("SMS messages")
        indexes = [
            # due: queued, failed past backoff, sending past its lease (the worker died mid-send)
            models.Index(fields=["state", "next_attempt_at"], name="sms_due_idx",
                         condition=Q(state__in=["queued", "failed", "sending"])),
            # delivery receipts name the gateway's message id
            models.Index(fields=["provider_id"], name="sms_provider_idx", condition=~Q(provider_id="")),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} → {self.phone_masked} ({self.get_state_display()})"


# --- Signals in (the engine's inputs) -------------------------------------------------------
# Resident foreign keys of signal rows have no index of their own: each table's composite
# (resident, instant) index covers them, one index less on the ingest path.
# Every signal row carries `record_key` (the client's record id, or a hash of the record's
# content when it sent none) so a retried record is a no-op, and `received_at`: a signal only
# counts from when it is on record (DOMAIN.md: "a result only counts once synced").


class IdempotentRequest(models.Model):
    """A client's POST sent with an `Idempotency-Key` and the answer it got, so that the same
    request sent again (a network retry) gets that answer instead of doing the work twice
    (healthkit.api.IdempotentPost). Kept IDEMPOTENCY_KEY_HOURS; answers only, never a request body."""

    client = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("client"), on_delete=models.CASCADE,
                               related_name="+")
    key = models.CharField(_("idempotency key"), max_length=200)
    # SHA-256 of method, path and body: the same key with another request is refused, not replayed
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(_("status"))
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(default=b"")
    created_at = clock.DateTimeField(_("created at"), default=clock.now)

    class Meta:
        verbose_name = _("idempotent request")
        verbose_name_plural = _("idempotent requests")
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="idempotent_request_client_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotent_request_created_idx")]  # the purge

    def __str__(self) -> str:
        return self.key


class IngestBatch(models.Model):
    """One ingest request, by the client's batch id: replaying it returns the stored answer."""

    class Kind(models.TextChoices):
        TEST_RESULTS = "test_results", _("Nucleic-acid test results")
        ARRIVALS = "arrivals", _("Arrivals into the city")
        STAYS = "stays", _("Stays outside the city")
        LOCAL_CASES = "local_cases", _("Local cases per county")
        QUARANTINE_ORDERS = "quarantine_orders", _("Entry quarantine orders")
        MEDICAL_EVENTS = "medical_events", _("Drug purchases and clinic visits")
        POPUP_ASSIGNMENTS = "popup_assignments", _("Upstream popup assignments")

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    client = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("client"), on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    batch_id = models.CharField(_("client batch id"), max_length=80)
    received_at = models.DateTimeField(_("received at"))
    records = models.PositiveIntegerField(_("records"), default=0)
    accepted = models.PositiveIntegerField(_("accepted"), default=0)
    duplicates = models.PositiveIntegerField(_("duplicates"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    response = models.JSONField(_("response"), default=dict, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("ingest batch")
        verbose_name_plural = _("ingest batches")
        constraints = [
            models.UniqueConstraint(fields=["client", "kind", "batch_id"], name="ingest_batch_unique",
                                    nulls_distinct=False),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.batch_id}"


class Arrival(models.Model):
    """Arrived in the city (a type-4 trigger: test within 72 h)."""

    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="+", db_index=False)
    arrived_at = models.DateTimeField(_("arrived at"))
    from_county = models.CharField(_("from county (code)"), max_length=12)
    record_key = models.CharField(_("record key"), max_length=100, unique=True)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        ordering = ["-arrived_at"]
        verbose_name = _("arrival")
        verbose_name_plural = _("arrivals")
        # Type 4 reads a resident's triggers.
        indexes = [
            models.Index(fields=["resident", "arrived_at"], name="arrival_resident_idx"),
            # The sweep finds deadlines passed since its last run by the trigger's instant.
            models.Index(fields=["arrived_at"], name="arrival_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.from_county} → {clock.local_text(self.arrived_at, '%Y-%m-%d %H:%M')}"


class Stay(models.Model):
    """A stay outside the city, in one county (types 1 and 5)."""

    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="+", db_index=False)
    county = models.CharField(_("county (code)"), max_length=12)
    started_at = models.DateTimeField(_("from"))
    ended_at = models.DateTimeField(_("to"), null=True, blank=True, help_text=_("Empty while still there."))
    border_port = models.BooleanField(_("county has a land border port"), default=False)
    record_key = models.CharField(_("record key"), max_length=100, unique=True)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("stay outside the city")
        verbose_name_plural = _("stays outside the city")
        constraints = [
            models.CheckConstraint(condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                                   name="stay_ordered"),
        ]
        indexes = [
            models.Index(fields=["resident", "started_at"], name="stay_resident_idx"),
            # A new local case re-evaluates the residents who stayed in that county.
            models.Index(fields=["county", "ended_at"], name="stay_county_idx"),
            # The sweep finds windows since leaving that expired since its last run.
            models.Index(fields=["ended_at"], name="stay_ended_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.county} {clock.local_text(self.started_at, '%Y-%m-%d')}"


class LocalCase(models.Model):
    """A local case reported in a county: the county is 'affected' for 7 days (policy)."""

    county = models.CharField(_("county (code)"), max_length=12)
    reported_at = models.DateTimeField(_("reported at"))
    record_key = models.CharField(_("record key"), max_length=100, unique=True)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        ordering = ["-reported_at"]
        verbose_name = _("local case")
        verbose_name_plural = _("local cases")
        indexes = [
            models.Index(fields=["county", "reported_at"], name="localcase_county_idx"),
            models.Index(fields=["reported_at"], name="localcase_reported_idx"),  # case-free ends
        ]

    def __str__(self) -> str:
        return f"{self.county} {clock.local_text(self.reported_at, '%Y-%m-%d')}"


class QuarantineOrder(models.Model):
    """Entry quarantine (type 2): active from the start, lifted 00:00 the day after the end."""

    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="+", db_index=False)
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("to"))
    record_key = models.CharField(_("record key"), max_length=100, unique=True)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        ordering = ["-starts_at"]
        verbose_name = _("entry quarantine order")
        verbose_name_plural = _("entry quarantine orders")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gte=models.F("starts_at")), name="quarantine_ordered"),
        ]
        indexes = [
            models.Index(fields=["resident", "starts_at"], name="quarantine_resident_idx"),
            models.Index(fields=["starts_at"], name="quarantine_starts_idx"),  # sweep: starts
            models.Index(fields=["ends_at"], name="quarantine_ends_idx"),  # sweep: ends
        ]

    def __str__(self) -> str:
        return f"{clock.local_text(self.starts_at, '%Y-%m-%d')} – {clock.local_text(self.ends_at, '%Y-%m-%d')}"


class MedicalEvent(models.Model):
    """A purchase of one of the four kinds of drugs, or a clinic visit with one of the 11
    symptoms: both are type-4 triggers."""

    class Kind(models.TextChoices):
        DRUG_PURCHASE = "drug_purchase", _("Drug purchase")
        CLINIC_VISIT = "clinic_visit", _("Clinic visit")

    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(_("kind"), max_length=14, choices=Kind.choices)
    detail = models.CharField(_("drug category or symptom"), max_length=32)
    occurred_at = models.DateTimeField(_("occurred at"))
    record_key = models.CharField(_("record key"), max_length=100, unique=True)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        ordering = ["-occurred_at"]
        verbose_name = _("drug purchase or clinic visit")
        verbose_name_plural = _("drug purchases and clinic visits")
        indexes = [
            models.Index(fields=["resident", "occurred_at"], name="medical_resident_idx"),
            models.Index(fields=["occurred_at"], name="medical_at_idx"),  # sweep: deadlines
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.detail}"


class PopupAssignment(models.Model):
    """A popup assigned upstream (type 3 from the big-data match). Applied once: `case` is the
    popup it raised or joined; a community lift is never undone by replaying it."""

    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="+")
    popup_type = models.PositiveSmallIntegerField(_("popup type"), choices=PopupType.choices)
    reason = models.CharField(_("reason"), max_length=200)
    assigned_at = models.DateTimeField(_("assigned at"))
    record_key = models.CharField(_("record key"), max_length=100, unique=True)
    received_at = models.DateTimeField(_("received at"))
    case = models.ForeignKey(PopupCase, verbose_name=_("popup"), on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-assigned_at"]
        verbose_name = _("upstream popup assignment")
        verbose_name_plural = _("upstream popup assignments")
        indexes = [
            models.Index(fields=["resident"], name="assignment_pending_idx", condition=Q(case__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.get_popup_type_display()} {clock.local_text(self.assigned_at, '%Y-%m-%d')}"


class TestRequirement(models.Model):
    """A test required of one resident by a deadline (occupational or mass screening, a risk
    investigation, a checkpoint): a type-4 trigger with its own deadline. Written by
    healthkit.services.test_requirement_create (other apps call that)."""

    class Kind(models.TextChoices):
        OCCUPATIONAL = "occupational", _("Occupational screening")
        MASS_SCREENING = "mass_screening", _("Mass screening")
        INVESTIGATION = "investigation", _("Risk investigation")
        CHECKPOINT = "checkpoint", _("Checkpoint")

    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="+", db_index=False)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    trigger_at = models.DateTimeField(_("required from"))
    deadline_at = models.DateTimeField(_("deadline"))
    reason = models.CharField(_("reason"), max_length=200)
    source_ref = models.CharField(_("source reference"), max_length=100, blank=True, default="")
    received_at = models.DateTimeField(_("received at"))
    # Withdrawn before its deadline by whoever required it (a clearance task ended without its
    # measures being needed): no longer a type-4 trigger.
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)

    class Meta:
        ordering = ["-trigger_at"]
        verbose_name = _("test requirement")
        verbose_name_plural = _("test requirements")
        constraints = [
            models.UniqueConstraint(fields=["resident", "kind", "source_ref", "trigger_at"],
                                    name="test_requirement_once"),
            models.CheckConstraint(condition=Q(deadline_at__gte=models.F("trigger_at")),
                                   name="test_requirement_ordered"),
        ]
        # Type 4 reads a resident's triggers.
        indexes = [
            models.Index(fields=["resident", "trigger_at"], name="requirement_resident_idx"),
            models.Index(fields=["deadline_at"], name="requirement_deadline_idx"),  # sweep
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {clock.local_text(self.deadline_at, '%Y-%m-%d %H:%M')}"


class EngineSweep(models.Model):
    """One periodic sweep: the instant it evaluated, whether it was full or covered only the
    residents with a time boundary since the previous one, and what it changed."""

    at = models.DateTimeField(_("evaluated at"), db_index=True)
    full = models.BooleanField(_("full"), default=False)
    residents = models.PositiveIntegerField(_("residents evaluated"), null=True, blank=True,
                                            help_text=_("Empty for a full sweep (everyone)."))
    raised = models.PositiveIntegerField(_("raised"), default=0)
    lifted = models.PositiveIntegerField(_("lifted"), default=0)
    # A full sweep raises in chunks (ENGINE_SWEEP_MAX_RAISES): this chunk left raises for the next.
    more = models.BooleanField(_("raises left"), default=False, db_default=False)
    duration_ms = models.PositiveIntegerField(_("duration ms"), default=0)
    created_at = clock.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("engine sweep")
        verbose_name_plural = _("engine sweeps")

    def __str__(self) -> str:
        return f"{'full' if self.full else 'due'} sweep @ {clock.local_text(self.at, '%Y-%m-%d %H:%M:%S')}"


# --- Outbox to downstream systems (rail and airline ticket restriction) ---------------------


class DownstreamEndpoint(models.Model):
    """A system told about every popup raised or lifted (configured by administrators)."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    url = models.URLField(_("URL"))
    token = models.CharField(_("bearer token"), max_length=200, blank=True)
    signing_secret = models.CharField(
        _("signing secret"), max_length=200, blank=True,
        help_text=_("When set, every POST is signed with it: X-Healthkit-Signature, an HMAC-SHA256 of the "
                    "timestamp and the body the endpoint can check (docs/engine.md)."),
    )
    send_id_number = models.BooleanField(
        _("send the ID number"), default=True,
        help_text=_("Ticket systems identify travellers by ID number; it is decrypted at send time only."),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = clock.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("downstream endpoint")
        verbose_name_plural = _("downstream endpoints")

    def __str__(self) -> str:
        return self.name


class OutboxRecord(models.Model):
    """A popup raised or lifted, written in the same transaction as the change (the promise).

    Either one popup (`case`, `resident`) or a batch: the raises of one risk window version
    (`case_ids` / `resident_ids`, parallel and in case order, frozen when written so every page
    of the batch carries the same cases on every try). A batch is sent in pages of BATCH_PAGE
    cases, each page with its own idempotency key (`<idempotency_key>-p<page>`)."""

    class Kind(models.TextChoices):
        RAISED = "raised", _("Raised")
        LIFTED = "lifted", _("Lifted")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    BATCH_PAGE = 5000

    # One popup's record is unique by (popup, kind) and its key is `popup-<case>-<kind>` (both
    # constraints below); only a batch's key has an index of its own. A unique index over every
    # key put each new record at a random leaf (the keys sort as text, not by popup): it was
    # half the cost of writing a sweep's 10,000 lift records.
    idempotency_key = models.CharField(_("idempotency key"), max_length=80)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # Indexed by the (case, kind) unique constraint, which starts with it. Both references are
    # held by set-wise triggers (migration 0024), as PopupCase.resident: a withdrawal of 25 k
    # popups writes 25 k records and deliveries, five row-by-row foreign-key checks each.
    case = models.ForeignKey(PopupCase, verbose_name=_("popup"), on_delete=models.PROTECT, related_name="+",
                             null=True, blank=True, db_index=False, db_constraint=False)
    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="+",
                                 null=True, blank=True, db_constraint=False)
    popup_type = models.PositiveSmallIntegerField(_("popup type"), choices=PopupType.choices)
    at = models.DateTimeField(_("at"))
    payload = models.JSONField(_("payload"), default=dict)
    # A batch's popups and their residents (plain ids, parallel arrays; NULL for one popup).
    case_ids = ArrayField(models.BigIntegerField(), verbose_name=_("popups"), null=True, blank=True)
    resident_ids = ArrayField(models.BigIntegerField(), verbose_name=_("residents"), null=True, blank=True)
    created_at = clock.DateTimeField(_("created at"), default=clock.now)

    class Meta:
        ordering = ["id"]
        verbose_name = _("outbox record")
        verbose_name_plural = _("outbox records")
        constraints = [
            models.UniqueConstraint(fields=["case", "kind"], condition=Q(case__isnull=False),
                                    name="outbox_record_one_per_popup_change"),
            models.UniqueConstraint(fields=["idempotency_key"], condition=Q(case__isnull=True),
                                    name="outbox_batch_key_uniq"),
            # So the two unique constraints make every key unique (a batch's never starts "popup-");
            # retention blanks the key of a forgotten person's (delivered) record.
            models.CheckConstraint(
                condition=Q(case__isnull=True) & ~Q(idempotency_key__startswith="popup-")
                | Q(idempotency_key="")
                | Q(idempotency_key=Concat(Value("popup-"), Cast("case", models.CharField()), Value("-"), "kind")),
                name="outbox_record_key_names_popup",
            ),
            models.CheckConstraint(
                condition=Q(case__isnull=False, case_ids__isnull=True, resident_ids__isnull=True)
                | Q(case__isnull=True, resident__isnull=True, case_ids__isnull=False, resident_ids__isnull=False),
                name="outbox_record_one_popup_or_batch",
            ),
        ]

    def __str__(self) -> str:
        if self.is_batch:
            return f"{self.get_kind_display()} {self.idempotency_key} ({len(self.case_ids)})"
        return f"{self.get_kind_display()} #{self.case_id}"

    @property
    def is_batch(self) -> bool:
        return self.case_ids is not None

    @property
    def pages(self) -> int:
        """Pages a batch is sent in (1 for one popup)."""
        return max(1, -(-len(self.case_ids) // self.BATCH_PAGE)) if self.is_batch else 1


class OutboxDelivery(models.Model):
    """One record to one endpoint. Per-endpoint rows: a failing endpoint blocks nobody else."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        FAILED = "failed", _("Failed, will retry")
        DELIVERED = "delivered", _("Delivered")
        DEAD = "dead", _("Gave up (retry from the admin)")

    # The three references are held by set-wise triggers (migration 0024), as the record's; the
    # record is indexed by delivery_once_per_endpoint (record, endpoint), which starts with it.
    record = models.ForeignKey(OutboxRecord, verbose_name=_("record"), on_delete=models.CASCADE, related_name="deliveries",
                               db_index=False, db_constraint=False)
    endpoint = models.ForeignKey(DownstreamEndpoint, verbose_name=_("endpoint"), on_delete=models.PROTECT, related_name="deliveries",
                                 db_constraint=False)
    # Copied from the record so the due query keeps one resident's records in order per endpoint
    # (NULL for a batch: its residents are the record's `resident_ids`).
    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="+",
                                 null=True, blank=True, db_constraint=False)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = clock.DateTimeField(_("next attempt at"), default=clock.now)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    # A batch's pages acknowledged by the endpoint: a retry resumes at the next page.
    pages_done = models.PositiveIntegerField(_("pages delivered"), default=0, db_default=0)

    class Meta:
        ordering = ["id"]
        verbose_name = _("outbox delivery")
        verbose_name_plural = _("outbox deliveries")
        constraints = [
            models.UniqueConstraint(fields=["record", "endpoint"], name="delivery_once_per_endpoint"),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="delivery_due_idx",
                         condition=Q(state__in=["pending", "failed"])),
            # Per-resident order: an undelivered (even dead) earlier row holds later ones back;
            # with resident IS NULL it also finds the endpoint's undelivered batches.
            models.Index(fields=["endpoint", "resident", "id"], name="delivery_order_idx",
                         condition=Q(state__in=["pending", "failed", "dead"])),
        ]

    def __str__(self) -> str:
        return f"{self.record} → {self.endpoint} ({self.get_state_display()})"


class OutboxAttempt(models.Model):
    """The per-endpoint delivery log (admin): one row per try."""

    delivery = models.ForeignKey(OutboxDelivery, verbose_name=_("delivery"), on_delete=models.CASCADE, related_name="log")
    at = clock.DateTimeField(_("at"), default=clock.now)
    ok = models.BooleanField(_("ok"), default=False)
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=200, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration ms"), default=0)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")

    def __str__(self) -> str:
        return f"{clock.local_text(self.at, '%Y-%m-%d %H:%M:%S')} {'ok' if self.ok else self.error}"


class EngineWork(models.Model):
    """The residents of one evaluation task (at most engine_work.CHUNK), written in the same
    transaction as the signals that need them (a transactional outbox for engine work). The
    evaluation that commits deletes it; a row no task took (broker down, task lost or given up)
    is picked up by the every-minute `engine_work_due`. One row per task, not per resident: a
    batch of 10,000 results writes 10 rows, not 10,000 rows with three index entries each. No
    foreign key: a resident forgotten meanwhile simply evaluates to nothing."""

    resident_ids = ArrayField(models.BigIntegerField(), verbose_name=_("residents"))
    created_at = clock.DateTimeField(_("created at"), default=clock.now)

    class Meta:
        verbose_name = _("pending evaluation")
        verbose_name_plural = _("pending evaluations")
        # A task finds its own row by its first resident (engine_work._claim); the sweep reads
        # the oldest rows in id order (the primary key), so no index on created_at.
        indexes = [models.Index(models.F("resident_ids__0"), name="enginework_first_resident_idx")]

    def __str__(self) -> str:
        return f"{len(self.resident_ids)} residents since {clock.local_text(self.created_at, '%H:%M:%S')}"
