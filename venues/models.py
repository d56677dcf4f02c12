"""Venues: the registry (with a stable code printed as a QR poster), scan records, risk windows
and the exposures (popup 3) they raised.

Time windows are half-open everywhere: a risk window [starts_at, ends_at) contains a scan at
exactly `starts_at` and does not contain one at exactly `ends_at`.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from communities.models import Community, District, Resident
from healthkit import clock
from healthkit.models import PopupCase

# Crockford base32 without I, L, O, U: unambiguous when read aloud or typed from a poster.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10


def new_venue_code() -> str:
    return "V" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH - 1))


class Venue(models.Model):
    class Kind(models.TextChoices):
        RESTAURANT = "restaurant", _("Restaurant")
        MALL = "mall", _("Shopping mall")
        SUPERMARKET = "supermarket", _("Supermarket or market")
        HOSPITAL = "hospital", _("Hospital or clinic")
        OFFICE = "office", _("Office building")
        HOTEL = "hotel", _("Hotel")
        SCHOOL = "school", _("School")
        TRANSPORT = "transport", _("Station or transport hub")
        ENTERTAINMENT = "entertainment", _("Entertainment venue")
        RESIDENTIAL = "residential", _("Residential compound gate")
        OTHER = "other", _("Other")

    # Stable: printed on the poster, never reused or changed.
    code = models.CharField(_("venue code"), max_length=16, unique=True, default=new_venue_code,
                            editable=False)
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.OTHER)
    address = models.CharField(_("address"), max_length=200, blank=True)
    # Empty only for venues created by the scenario simulator.
    community = models.ForeignKey(Community, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="venues", verbose_name=_("community"))
    district = models.ForeignKey(District, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="venues", verbose_name=_("district"))
    managers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="managed_venues",
                                      verbose_name=_("managers"),
                                      limit_choices_to={"role": "venue_manager"})
    active = models.BooleanField(_("active"), default=True)
    created_at = clock.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("venue")
        verbose_name_plural = _("venues")
        indexes = [models.Index(fields=["district", "kind"], name="venue_district_kind_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class VenueScan(models.Model):
    """One scan of a venue's code by a resident (扫码登记). Tens of millions a day: written only
    by COPY + INSERT ... ON CONFLICT DO NOTHING (venues.ingest).

    The natural key (venue, scanned_at, resident) makes a retried scan a duplicate and is also
    the index the exposure job and the visitor register read (venue + time range, index-only).
    It contains `scanned_at`, so the table can be range-partitioned by day/month later without
    changing the key (the id would then join scanned_at in the primary key)."""

    venue = models.ForeignKey(Venue, verbose_name=_("venue"), on_delete=models.PROTECT, related_name="+", db_index=False)
    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="+", db_index=False)
    scanned_at = models.DateTimeField(_("scanned at"))
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        ordering = ["-scanned_at"]
        verbose_name = _("venue scan")
        verbose_name_plural = _("venue scans")
        constraints = [
            models.UniqueConstraint(fields=["venue", "scanned_at", "resident"], name="scan_unique_visit"),
        ]
        indexes = [
            # A community's investigation reads one resident's itinerary.
            models.Index(fields=["resident", "scanned_at"], name="scan_resident_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.venue_id} @ {clock.local_text(self.scanned_at, '%Y-%m-%d %H:%M')}"


class ScanBatch(models.Model):
    """One scan ingest request by the client's batch id: a replay returns the stored answer."""

    client = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("client"), on_delete=models.PROTECT, null=True,
                               blank=True, related_name="+")
    batch_id = models.CharField(_("client batch id"), max_length=80)
    received_at = models.DateTimeField(_("received at"))
    response = models.JSONField(_("response"), default=dict, blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("scan batch")
        verbose_name_plural = _("scan batches")
        constraints = [
            models.UniqueConstraint(fields=["client", "batch_id"], name="scan_batch_unique",
                                    nulls_distinct=False),
        ]

    def __str__(self) -> str:
        return self.batch_id


class RiskWindow(models.Model):
    """A venue marked as a risk point (风险点位) over [starts_at, ends_at)."""

    class Level(models.TextChoices):
        HIGH = "high", _("High")
        MEDIUM = "medium", _("Medium")
        LOW = "low", _("Low")

    class State(models.TextChoices):
        ACTIVE = "active", _("Active")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    venue = models.ForeignKey(Venue, on_delete=models.PROTECT, related_name="risk_windows",
                              verbose_name=_("venue"))
    starts_at = models.DateTimeField(_("from (inclusive)"))
    ends_at = models.DateTimeField(_("to (exclusive)"))
    risk_level = models.CharField(_("risk level"), max_length=8, choices=Level.choices)
    reason = models.CharField(_("reason"), max_length=200)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.ACTIVE)
    # Bumped by each correction; the popups carry the version they were raised or updated for.
    version = models.PositiveIntegerField(_("version"), default=1)
    # Set in the same transaction as anything the exposure job must react to (a new window, a
    # correction, a withdrawal, late scans inside it); cleared by the job. The beat sweep runs
    # due windows, so nothing is lost if an on-commit kick is.
    exposure_due = models.BooleanField(_("exposure due"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), on_delete=models.PROTECT, null=True,
                                   blank=True, related_name="+")
    created_at = clock.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = clock.DateTimeField(_("updated at"), auto_now=True)
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        verbose_name = _("risk window")
        verbose_name_plural = _("risk windows")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="risk_window_ordered"),
            models.CheckConstraint(
                condition=Q(state="active", withdrawn_at__isnull=True)
                | Q(state="withdrawn", withdrawn_at__isnull=False),
                name="risk_window_withdrawn_at_matches_state",
            ),
        ]
        indexes = [
            # Scan ingest marks active windows of the scanned venues as due.
            models.Index(fields=["venue", "starts_at"], name="risk_window_venue_idx",
                         condition=Q(state="active")),
            models.Index(fields=["id"], name="risk_window_due_idx", condition=Q(exposure_due=True)),
        ]

    def __str__(self) -> str:
        return f"{self.venue} [{clock.local_text(self.starts_at, '%Y-%m-%d %H:%M')} – {clock.local_text(self.ends_at, '%Y-%m-%d %H:%M')})"

    @property
    def dedupe_key(self) -> str:
        return f"venue-risk:{self.pk}"


class RiskWindowEvent(models.Model):
    """Append-only trace of a risk window: created, corrected (before/after), withdrawn, and
    what each exposure run changed (popups raised, updated, withdrawn, and those left because
    someone had already acted on them)."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Created")
        CORRECTED = "corrected", _("Corrected")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        EXPOSURE = "exposure", _("Exposure run")

    window = models.ForeignKey(RiskWindow, verbose_name=_("window"), on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("actor"), on_delete=models.PROTECT, null=True,
                              blank=True, related_name="+")
    actor_label = models.CharField(_("actor label"), max_length=64, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    at = models.DateTimeField(_("at"))

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("risk window event")
        verbose_name_plural = _("risk window events")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} @ {clock.local_text(self.at, '%Y-%m-%d %H:%M')}"


class Exposure(models.Model):
    """A resident who scanned inside a risk window, and the popup 3 it raised. One row per
    (window, resident): what makes the exposure job idempotent and lets it find, by window, the
    popups it raised."""

    # The three references are held by set-wise triggers (venues migration 0004), not foreign-key
    # constraints checked row by row (see PopupCase.resident). The window is indexed by
    # exposure_once_per_window; nothing reads exposures by popup (only a popup's delete guard).
    window = models.ForeignKey(RiskWindow, verbose_name=_("window"), on_delete=models.PROTECT, related_name="exposures",
                               db_index=False, db_constraint=False)
    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="+",
                                 db_constraint=False)
    case = models.ForeignKey(PopupCase, verbose_name=_("case"), on_delete=models.PROTECT, related_name="+",
                             db_index=False, db_constraint=False)
    # The first scan inside the window (plain id: scans may be archived by partition).
    scan_id = models.BigIntegerField(_("scan id"), null=True, blank=True)
    scanned_at = models.DateTimeField(_("scanned at"))
    raised_at = models.DateTimeField(_("raised at"))
    # Set when the job withdrew the popup (the window was withdrawn or corrected away from the
    # visit); such a popup may be raised again if a later correction covers the visit again.
    withdrawn_at = models.DateTimeField(_("withdrawn at"), null=True, blank=True)
    # The window version for which a popup someone had acted on was last flagged (no repeat notes).
    flagged_version = models.PositiveIntegerField(_("flagged version"), default=0)

    class Meta:
        ordering = ["window", "resident"]
        verbose_name = _("venue exposure")
        verbose_name_plural = _("venue exposures")
        constraints = [
            models.UniqueConstraint(fields=["window", "resident"], name="exposure_once_per_window"),
        ]

    def __str__(self) -> str:
        return f"window {self.window_id} → popup {self.case_id}"


class ExposurePending(models.Model):
    """The trace a parallel first run's second half leaves in its own transaction (venues.exposure):
    its popups are committed but not yet announced to the ticket systems. The run's leader
    deletes it in the transaction that announces them; one left behind (the leader failed after
    the half committed) is announced by the window's next run, once, and then deleted."""

    # A plain id, not a foreign key: writing it must not take a key-share lock on the window
    # row, which the run's leader holds FOR UPDATE while it waits for this half (a deadlock the
    # server could not see: the leader waits in Python). The window's rows are PROTECTed by its
    # exposure rows in any case.
    window_id = models.BigIntegerField(_("window"), db_index=True)
    version = models.PositiveIntegerField(_("window version"))
    # The run's instant: the popups' raised_at and their exposure rows' raised_at.
    at = models.DateTimeField(_("at"))
    policy_version = models.CharField(_("policy version"), max_length=32)
    raised = models.PositiveIntegerField(_("raised"), default=0)
    # The part of the cause the run's popups share (what its RiskWindowEvent keeps; cause_as_raised)
    cause_shared = models.JSONField(_("shared cause"), default=dict)

    class Meta:
        verbose_name = _("exposure run pending announcement")
        verbose_name_plural = _("exposure runs pending announcement")

    def __str__(self) -> str:
        return f"window {self.window_id} v{self.version} @ {clock.local_text(self.at, '%Y-%m-%d %H:%M:%S')}"
