"""Community clearance: a confirmation task per resident and cause, the resident's signed SMS
link, and the task's append-only history."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from appeals.models import Appeal
from communities.fields import EncryptedJSONField
from communities.models import Community, Resident
from healthkit import clock
from healthkit.models import PopupCase

OPEN_TASK_STATES = ("open", "confirmed", "info_requested", "measures")

# The community's own calls (kept as ClearanceEvent kind "call" with these codes in `data`).
CALL_DIRECTIONS = [("outbound", _("We called the resident")), ("inbound", _("The resident called us"))]
CALL_OUTCOMES = [("reached", _("Spoke with the resident")), ("no_answer", _("No answer")),
                 ("busy", _("Line busy")), ("wrong_number", _("Wrong number"))]


class ClearanceTask(models.Model):
    """One community's work on one resident's popup: confirm, investigate, decide, lift."""

    class Origin(models.TextChoices):
        APPEAL = "appeal", _("Appeal routed by 12345")
        RISK_LINK = "risk_link", _("Popup 3: risk investigation")
        IN_CITY = "in_city", _("Popup 1: resident already in the city")
        MISATTRIBUTION = "misattribution", _("Upstream attribution to check")
        STRANDED = "stranded", _("Stranded outside the city, wishes to return")
        CHECKPOINT = "checkpoint", _("Self-drive return, pre-approved at a checkpoint")

    class State(models.TextChoices):
        OPEN = "open", _("Waiting for the resident")
        CONFIRMED = "confirmed", _("Resident confirmed")
        INFO_REQUESTED = "info_requested", _("More information asked for")
        MEASURES = "measures", _("Measures in progress")
        LIFTED = "lifted", _("Accepted, popup lifted")
        # The return was accepted but no popup was on record for the task to lift.
        ACCEPTED = "accepted", _("Accepted, no popup to lift")
        REJECTED = "rejected", _("Rejected")
        CLOSED = "closed", _("Closed without decision")

    class Priority(models.IntegerChoices):
        # Lower sorts first, same scale as appeals.
        EMERGENCY = 1, _("Emergency")
        HIGH = 2, _("High")
        NORMAL = 3, _("Normal")

    class NextStep(models.TextChoices):
        WAIT_7_DAYS = "wait_7_days", _("Stay 7 days in a place without cases, then apply again")
        REAPPLY_EVIDENCE = "reapply_evidence", _("Apply again with the missing evidence")
        CONTACT_COMMUNITY = "contact_community", _("Call the community's duty phone")
        QUARANTINE = "quarantine", _("Follow the quarantine arranged by the community")

    class Outcome(models.TextChoices):
        HIGH_RISK = "high_risk", _("High-risk link: centralised quarantine (red)")
        MEDIUM_RISK = "medium_risk", _("Medium-risk link: home isolation (yellow) with tests")
        LISTED_AREA = "listed_area", _("Other listed area: tests on days 1, 2, 4 and 7")
        NOTHING_FOUND = "nothing_found", _("Nothing found: commitment letter and a negative test")

    OPEN_STATES = OPEN_TASK_STATES
    # Waiting for the community's response: the SLA applies (not once measures have started).
    AWAITING_STATES = ("open", "confirmed", "info_requested")
    CLOSED_STATES = (State.LIFTED, State.ACCEPTED, State.REJECTED, State.CLOSED)
    # The table allows every decision; what a popup's type requires before it is lifted (popup 3:
    # its investigation's measures complete) is checked by services.clearance_accept.
    TRANSITIONS: dict[str, set[str]] = {
        State.OPEN: {State.CONFIRMED, State.INFO_REQUESTED, State.MEASURES, State.LIFTED, State.ACCEPTED,
                     State.REJECTED, State.CLOSED},
        State.CONFIRMED: {State.INFO_REQUESTED, State.MEASURES, State.LIFTED, State.ACCEPTED, State.REJECTED,
                          State.CLOSED},
        State.INFO_REQUESTED: {State.CONFIRMED, State.MEASURES, State.LIFTED, State.ACCEPTED, State.REJECTED,
                               State.CLOSED},
        State.MEASURES: {State.LIFTED, State.ACCEPTED, State.REJECTED, State.CLOSED},
        State.LIFTED: set(),
        State.ACCEPTED: set(),
        State.REJECTED: set(),
        State.CLOSED: set(),
    }

    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="clearance_tasks")
    community = models.ForeignKey(Community, on_delete=models.PROTECT, related_name="clearance_tasks",
                                  verbose_name=_("community"))
    popup = models.ForeignKey(PopupCase, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="clearance_tasks", verbose_name=_("popup"))
    appeal = models.ForeignKey(Appeal, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="clearance_tasks", verbose_name=_("appeal"))
    origin = models.CharField(_("origin"), max_length=16, choices=Origin.choices)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.OPEN)
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices, default=Priority.NORMAL)
    sla_due_at = models.DateTimeField(_("SLA due"), null=True, blank=True)
    sla_breached_at = models.DateTimeField(_("SLA breached at"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    # The hotline asked the resident for more evidence on the task's appeal: the task waits with
    # it (flagged on both consoles, its SLA clock stopped) until the evidence arrives.
    on_hold_since = models.DateTimeField(_("on hold since"), null=True, blank=True)
    # Relief: known from the appeal or the resident's confirmation.
    outside_since = models.DateField(_("outside the city since"), null=True, blank=True)
    wishes_to_return = models.BooleanField(_("wishes to return"), default=False)
    # What the resident submitted through the link (address, symptoms, contact with a case: no ID
    # number): encrypted at rest like all personal data; code sees a dict.
    confirmation = EncryptedJSONField(_("resident's confirmation"), editable=False)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    contact_phone_encrypted = models.TextField(_("contact phone encrypted"), blank=True, editable=False)
    contact_phone_masked = models.CharField(_("contact phone"), max_length=16, blank=True)
    commitment_required = models.BooleanField(_("commitment letter required"), default=False)
    commitment_signed_at = models.DateTimeField(_("commitment letter signed at"), null=True, blank=True)
    commitment_digest = models.CharField(_("commitment digest"), max_length=64, blank=True, editable=False,
                                         help_text=_("SHA-256 of the letter text and the typed signature."))
    outcome = models.CharField(_("investigation outcome"), max_length=16, choices=Outcome.choices, blank=True)
    investigated_at = models.DateTimeField(_("investigated at"), null=True, blank=True)
    measures_until = models.DateTimeField(_("measures until"), null=True, blank=True)
    # Lifting after measures needs a negative result sampled at or after this instant.
    negative_test_after = models.DateTimeField(_("negative test needed after"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+", verbose_name=_("decided by"))
    decision_reason = models.TextField(_("reason"), blank=True)
    created_at = models.DateTimeField(_("created at"))
    updated_at = clock.DateTimeField(_("updated at"), auto_now=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        ordering = ["priority", "sla_due_at", "id"]
        verbose_name = _("clearance task")
        verbose_name_plural = _("clearance tasks")
        constraints = [
            # One open task per popup: a routed appeal joins the sweep's task and vice versa.
            models.UniqueConstraint(fields=["popup"], condition=Q(state__in=OPEN_TASK_STATES, popup__isnull=False),
                                    name="clearance_one_open_per_popup"),
            models.UniqueConstraint(fields=["appeal"], condition=Q(state__in=OPEN_TASK_STATES, appeal__isnull=False),
                                    name="clearance_one_open_per_appeal"),
            models.CheckConstraint(
                condition=Q(state__in=["lifted", "accepted", "rejected", "closed"], closed_at__isnull=False)
                | Q(state__in=OPEN_TASK_STATES, closed_at__isnull=True),
                name="clearance_closed_at_matches_state",
            ),
        ]
        indexes = [
            # The worklist: open tasks of a few communities by urgency.
            models.Index(fields=["community", "priority", "sla_due_at"], name="clearance_worklist_idx",
                         condition=Q(state__in=OPEN_TASK_STATES)),
            models.Index(fields=["sla_due_at"], name="clearance_sla_idx", condition=Q(state__in=OPEN_TASK_STATES)),
            models.Index(fields=["resident", "state"], name="clearance_resident_idx"),
            # A community worker's tasks in the REST list's order (by id, the cursor an index
            # condition) and counted by state, whatever their state.
            models.Index(fields=["community", "id"], name="clearance_community_seek_idx", include=["state"]),
            # The measures sweep: tasks in measures only (a small share of open tasks).
            models.Index(fields=["negative_test_after"], name="clearance_measures_idx",
                         condition=Q(state="measures")),
        ]

    def __str__(self) -> str:
        return f"C{self.pk:06d}" if self.pk else "C-new"

    @property
    def reference(self) -> str:
        return str(self)

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def is_awaiting(self) -> bool:
        return self.state in self.AWAITING_STATES


class ClearanceLink(models.Model):
    """A one-time link sent by SMS. Only the SHA-256 of the random token is stored."""

    class Purpose(models.TextChoices):
        CONFIRM = "confirm", _("Confirm information")
        COMMITMENT = "commitment", _("Sign the commitment letter")

    task = models.ForeignKey(ClearanceTask, verbose_name=_("task"), on_delete=models.CASCADE, related_name="links")
    purpose = models.CharField(_("purpose"), max_length=12, choices=Purpose.choices, default=Purpose.CONFIRM)
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("clearance link")
        verbose_name_plural = _("clearance links")

    def __str__(self) -> str:
        return f"{self.task} {self.purpose}"


class ClearanceEvent(models.Model):
    """Append-only history of a clearance task (decisions with actor and reason, links, calls)."""

    class Kind(models.TextChoices):
        OPENED = "opened", _("Opened")
        APPEAL_JOINED = "appeal_joined", _("Appeal attached")
        REROUTED = "rerouted", _("Moved to another community")
        # The hotline asked the resident for more evidence on the appeal; the evidence arrived.
        ON_HOLD = "on_hold", _("On hold: the hotline asked the resident for more evidence")
        RESUMED = "resumed", _("Resumed: the resident sent the evidence")
        # The resident's link ran out unanswered; the appeal came back (appeal_unanswered_sweep).
        RESUMED_UNANSWERED = "resumed_unanswered", _("Resumed: the resident did not answer in time")
        # The hotline linked the task's appeal to a popup another task works on (or away from this
        # task's popup): the appeal goes with that popup, this task goes on without it.
        APPEAL_UNLINKED = "appeal_unlinked", _("Appeal moved to another popup's task")
        # The task's appeal was merged into another appeal that had no task of its own: the task
        # goes on, with its history and SLA clock, for that appeal.
        APPEAL_MERGED = "appeal_merged", _("Appeal merged into another; the task goes on for that one")
        LINK_SENT = "link_sent", _("Link sent to the resident")
        CONFIRMED = "confirmed", _("Resident confirmed")
        COMMITMENT_SIGNED = "commitment_signed", _("Commitment letter signed")
        SIGNATURE_REFUSED = "signature_refused", _("Signature refused: the name did not match")
        INFO_REQUESTED = "info_requested", _("Information requested")
        INVESTIGATED = "investigated", _("Investigation recorded")
        LIFTED = "lifted", _("Accepted and lifted")
        ACCEPTED = "accepted", _("Accepted, no popup to lift")
        POPUP_LINKED = "popup_linked", _("Popup linked to the task")
        REJECTED = "rejected", _("Rejected")
        CLOSED = "closed", _("Closed")
        # The hotline closed the appeal the task was opened for before the community decided.
        WITHDRAWN = "withdrawn", _("Withdrawn by the hotline")
        # The hotline closed an appeal attached to a task that goes on for the popup on its own.
        APPEAL_CLOSED = "appeal_closed", _("Appeal closed by the hotline; the task goes on")
        PRIORITISED = "prioritised", _("Raised to priority")
        ESCALATED = "escalated", _("SLA escalation")
        CALL = "call", _("Phone call")
        NOTE = "note", _("Note")
        REVEAL = "reveal", _("Personal data revealed")

    task = models.ForeignKey(ClearanceTask, verbose_name=_("task"), on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    from_state = models.CharField(_("from state"), max_length=16, blank=True)
    to_state = models.CharField(_("to state"), max_length=16, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("actor"), on_delete=models.PROTECT, null=True, blank=True,
                              related_name="+")
    actor_label = models.CharField(_("actor label"), max_length=64, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    at = models.DateTimeField(_("at"))

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("clearance event")
        verbose_name_plural = _("clearance events")

    def __str__(self) -> str:
        return f"{self.task} {self.kind}"
