"""Appeals (12345 tickets): filed online or by phone, triaged by operators, routed to communities."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from communities.models import Community, Resident
from healthkit import clock
from healthkit.models import PopupCase

# How an appeal ended (Appeal.outcome): the operator's close form offers these; "merged" and the
# clearance decisions are written by the services. Unknown codes are shown as written.
OUTCOME_LABELS = {
    "lifted": _("Popup lifted"),
    "no_popup": _("No popup found"),
    "rejected": _("Request not granted"),
    "duplicate": _("Duplicate"),
    "withdrawn": _("Withdrawn by the resident"),
    "merged": _("Merged into another appeal"),
    "other": _("Other"),
}
# The outcomes an operator may choose (the console's close form, the REST close endpoint).
OPERATOR_OUTCOMES = ("lifted", "no_popup", "rejected", "duplicate", "withdrawn", "other")


# The columns the console queue's filters test (appeals.filters), carried by its default seek index.
QUEUE_FILTER_COLUMNS = ["status", "category", "channel", "popup_type_claimed", "community", "routed_community",
                        "assigned_to", "repeat_count", "escalated_at", "sla_due_at", "currently_outside_city",
                        "outside_since"]


class Appeal(models.Model):
    class Category(models.TextChoices):
        CORRECTION = "correction", _("Popup correction")
        EMERGENCY_MEDICAL = "emergency_medical", _("Emergency: medical treatment or escorting a patient")
        EMERGENCY_RELATIVE = "emergency_relative", _("Emergency: relative critically ill")
        EMERGENCY_BUSINESS = "emergency_business", _("Emergency: important business")
        STRANDED = "stranded", _("Stranded outside the city for over a month, wishing to return")
        OLD_PHONE = "old_phone", _("Wrong attribution through an old phone number")
        OTHER = "other", _("Other")

    EMERGENCY_CATEGORIES = (Category.EMERGENCY_MEDICAL, Category.EMERGENCY_RELATIVE, Category.EMERGENCY_BUSINESS)

    class Priority(models.IntegerChoices):
        # Lower sorts first: emergencies lead every queue.
        EMERGENCY = 1, _("Emergency")
        HIGH = 2, _("High")
        NORMAL = 3, _("Normal")

    class Status(models.TextChoices):
        NEW = "new", _("New")
        IN_PROGRESS = "in_progress", _("Being handled")
        WAITING_RESIDENT = "waiting_resident", _("Waiting for the resident")
        ROUTED = "routed", _("With the community")
        CLOSED = "closed", _("Closed")

    class Channel(models.TextChoices):
        ONLINE = "online", _("Online")
        PHONE = "phone", _("12345 phone call")
        OPEN311 = "open311", _("Open311 client")

    OPEN_STATUSES = (Status.NEW, Status.IN_PROGRESS, Status.WAITING_RESIDENT, Status.ROUTED)
    # The one table of allowed status changes; services.appeal_transition enforces it.
    TRANSITIONS: dict[str, set[str]] = {
        Status.NEW: {Status.IN_PROGRESS, Status.WAITING_RESIDENT, Status.ROUTED, Status.CLOSED},
        Status.IN_PROGRESS: {Status.WAITING_RESIDENT, Status.ROUTED, Status.CLOSED},
        Status.WAITING_RESIDENT: {Status.IN_PROGRESS, Status.ROUTED, Status.CLOSED},
        Status.ROUTED: {Status.IN_PROGRESS, Status.WAITING_RESIDENT, Status.CLOSED},
        Status.CLOSED: set(),
    }

    reference = models.CharField(_("reference"), max_length=20, unique=True)
    # The registry's record for the ID number given, when there is one. Never created or renamed
    # from what a filer typed: null while the ID number is not in the registry (an operator who
    # checks the caller confirms the filer, services.appeal_confirm_filer).
    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="appeals",
                                 null=True, blank=True)
    # The name and ID number as the filer gave them (every channel): the filer's words, which live
    # on the appeal, not in the registry. Encrypted; the hash finds the appeal on the status page.
    claimed_name_encrypted = models.TextField(blank=True, editable=False)
    claimed_id_encrypted = models.TextField(blank=True, editable=False)
    claimed_id_hash = models.CharField(max_length=64, blank=True, editable=False)
    # pii.masked_person of a name of up to 64 characters (inputs.NAME_MAX): 64 + " " + 18
    claimed_masked = models.CharField(_("name and ID as given"), max_length=83, blank=True, editable=False)
    # Null when the resident reports a popup our records do not show.
    popup = models.ForeignKey(PopupCase, verbose_name=_("popup"), on_delete=models.PROTECT, null=True, blank=True, related_name="appeals")
    popup_type_claimed = models.PositiveSmallIntegerField(_("popup type (as reported)"), null=True, blank=True)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.NEW)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, default=Channel.ONLINE)
    community = models.ForeignKey(Community, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="appeals", verbose_name=_("community (confirmed by resident)"))
    address_text = models.CharField(_("address as written"), max_length=200, blank=True)
    contact_phone_encrypted = models.TextField(_("contact phone encrypted"), blank=True, editable=False)
    contact_phone_hash = models.CharField(_("contact phone hash"), max_length=64, blank=True, editable=False)
    contact_phone_masked = models.CharField(_("contact phone"), max_length=16, blank=True)
    description = models.TextField(_("description"), blank=True)
    currently_outside_city = models.BooleanField(_("currently outside the city"), default=False)
    outside_since = models.DateField(_("outside the city since"), null=True, blank=True)
    wishes_to_return = models.BooleanField(_("wishes to return"), default=False)
    # Filed online from an SMS-verified phone that is not one of the resident's phones on record:
    # whoever filed knows a name and an ID number, nothing more. Such an appeal is kept apart from
    # the resident's popups and other appeals until an operator links it.
    filer_unconfirmed = models.BooleanField(
        _("filed from a phone not on record"), default=False,
        help_text=_("Filed online from a phone that is not on the resident's record; the filer's identity is "
                    "not confirmed."))
    # The language the resident filed in (online: the page's; by phone or Open311: the site's):
    # their SMS are written in it (healthkit.notify).
    language = models.CharField(_("language"), max_length=10, blank=True)
    repeat_count = models.PositiveIntegerField(_("repeats"), default=0)
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="assigned_appeals", verbose_name=_("assigned to"))
    routed_community = models.ForeignKey(Community, on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="routed_appeals", verbose_name=_("routed to community"))
    routed_at = models.DateTimeField(_("routed at"), null=True, blank=True)
    merged_into = models.ForeignKey("self", verbose_name=_("merged into"), on_delete=models.PROTECT, null=True, blank=True, related_name="merged")
    sla_due_at = models.DateTimeField(_("SLA due"), null=True, blank=True)
    sla_breached_at = models.DateTimeField(_("SLA breached at"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+", verbose_name=_("entered by"))
    created_at = clock.DateTimeField(_("filed at"), default=clock.now)
    updated_at = clock.DateTimeField(_("updated at"), auto_now=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    close_reason = models.CharField(_("close reason"), max_length=200, blank=True)
    outcome = models.CharField(_("outcome"), max_length=40, blank=True)

    class Meta:
        ordering = ["priority", "created_at"]
        verbose_name = _("appeal")
        verbose_name_plural = _("appeals")
        constraints = [
            # Repeats fold into the open appeal: one open appeal per resident and popup.
            models.UniqueConstraint(
                fields=["resident", "popup"],
                condition=Q(status__in=["new", "in_progress", "waiting_resident", "routed"], popup__isnull=False,
                            merged_into__isnull=True),
                name="appeal_one_open_per_popup",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "priority", "created_at"], name="appeal_queue_idx"),
            models.Index(fields=["assigned_to", "status"], name="appeal_mine_idx"),
            models.Index(fields=["sla_due_at"], name="appeal_sla_idx",
                         condition=Q(status__in=["new", "in_progress", "waiting_resident", "routed"])),
            # Seek pagination of the console queue: one index per offered ordering.
            # The default queue (open appeals, emergencies first, oldest first) reads this in order.
            # It carries the columns the queue's filters test, so a walk past rows a filter does
            # not want reads the index only, not the table (at 1 M appeals a filter whose rows
            # come late in this order, e.g. a category whose appeals all share one priority).
            models.Index(fields=["priority", "created_at", "id"], name="appeal_seek_priority_idx",
                         include=QUEUE_FILTER_COLUMNS,
                         condition=Q(status__in=["new", "in_progress", "waiting_resident", "routed"])),
            models.Index(fields=["created_at", "id"], name="appeal_seek_created_idx"),
            # A community worker's appeals (selectors.appeals_visible_to): those of the community
            # responsible, the routed one or else the one named. Led by it, a worker's list reads
            # their communities' rows only, newest first with the cursor an index condition; the
            # global order above read 26 k appeals of other communities for 51 of theirs. It
            # carries the filtered columns, so a filter is checked in the index (the planner then
            # prefers it to that walk even where a worker's share of the city is large).
            models.Index(Coalesce("routed_community", "community"), F("created_at"), F("id"),
                         name="appeal_responsible_idx", include=QUEUE_FILTER_COLUMNS),
            # The same order over every appeal ("everything", "closed"): without it such a page
            # sorts the whole table (0.2 s at 200 k appeals).
            models.Index(fields=["priority", "created_at", "id"], name="appeal_seek_priority_all_idx"),
            # The dashboard's refresh reads the appeals closed in its last few days.
            models.Index(fields=["closed_at"], name="appeal_closed_idx", condition=Q(closed_at__isnull=False)),
            models.Index(fields=["sla_due_at", "id"], name="appeal_seek_sla_idx"),
            # The open queues ordered by SLA: the cursor `(sla_due_at, id) > (...)` is an index condition.
            models.Index(fields=["sla_due_at", "id"], name="appeal_seek_sla_open_idx",
                         condition=Q(status__in=["new", "in_progress", "waiting_resident", "routed"])),
            # Phone search in the queue and the per-phone filing limit.
            models.Index(fields=["contact_phone_hash"], name="appeal_phone_lookup_idx"),
            # Beat sweep: open appeals past their SLA and not yet marked.
            models.Index(fields=["sla_due_at"], name="appeal_sla_unmarked_idx",
                         condition=Q(status__in=["new", "in_progress", "waiting_resident", "routed"],
                                     sla_breached_at__isnull=True)),
            # Folding an unconfirmed filer's repeats, and an appeal's ID number on the status page.
            models.Index(fields=["claimed_id_hash"], name="appeal_claimed_id_idx"),
            # The queue's filters on columns no seek index leads with: a page that matches few or
            # no rows finds them through these (selectors.page_sql) instead of reading the queue.
            # A category decides the first priority (emergencies lead): in priority order its rows
            # come late, so the filter reads them in that order from here, not past the others.
            models.Index(fields=["category", "priority", "created_at", "id"], name="appeal_category_seek_idx",
                         include=["status", "community", "routed_community"]),
            models.Index(fields=["channel"], name="appeal_channel_idx"),
            # With the community: a popup type in a district or community is one index condition.
            models.Index(fields=["popup_type_claimed", "community"], name="appeal_popup_type_place_idx"),
            models.Index(fields=["escalated_at"], name="appeal_escalated_idx", condition=Q(escalated_at__isnull=False)),
            models.Index(fields=["repeat_count"], name="appeal_repeated_idx", condition=Q(repeat_count__gt=0)),
            models.Index(fields=["outside_since"], name="appeal_outside_idx", condition=Q(currently_outside_city=True)),
            # Folding repeats for "a popup you don't show" (no popup row to hold the constraint).
            models.Index(fields=["resident", "popup_type_claimed"], name="appeal_unlisted_fold_idx",
                         condition=Q(popup__isnull=True, status__in=["new", "in_progress", "waiting_resident", "routed"])),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def person_masked(self) -> str:
        """Surname and ID ends as the filer gave them (the filer's words), else the record's."""
        if self.claimed_masked:
            return self.claimed_masked
        return self.resident.masked if self.resident_id else ""

    @property
    def outcome_label(self) -> str:
        return str(OUTCOME_LABELS.get(self.outcome, self.outcome))

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class AppealEvent(models.Model):
    """Append-only history of an appeal; the status page shows these in plain words."""

    class Kind(models.TextChoices):
        FILED = "filed", _("Appeal received")
        REPEAT = "repeat", _("The resident appealed again; added to this appeal")
        EVIDENCE_ADDED = "evidence_added", _("Evidence added")
        ASSIGNED = "assigned", _("Taken by an operator")
        PRIORITY_SET = "priority_set", _("Priority changed")
        STATUS_CHANGED = "status_changed", _("Status changed")
        EVIDENCE_REQUESTED = "evidence_requested", _("More evidence requested from the resident")
        ROUTED = "routed", _("Sent to the community")
        MERGED = "merged", _("Merged into another appeal")
        MERGED_IN = "merged_in", _("Another appeal was merged into this one")
        CONTACT = "contact", _("Call logged")
        SLA_BREACHED = "sla_breached", _("Response time exceeded")
        ESCALATED = "escalated", _("Escalated to a supervisor")
        REVEALED = "revealed", _("Personal data revealed")
        POPUP_LINKED = "popup_linked", _("Linked to a popup")
        FILER_CONFIRMED = "filer_confirmed", _("Filer's identity checked")
        CLOSED = "closed", _("Closed")
        NOTE = "note", _("Note")

    appeal = models.ForeignKey(Appeal, verbose_name=_("appeal"), on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("actor"), on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor_label = models.CharField(_("actor label"), max_length=64, blank=True)
    note = models.TextField(_("note"), blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    public = models.BooleanField(_("public"), default=True, help_text=_("Shown to the resident on the status page."))
    at = clock.DateTimeField(_("at"), default=clock.now)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["appeal", "at"], name="appeal_event_history_idx")]
        verbose_name = _("appeal event")
        verbose_name_plural = _("appeal events")

    def __str__(self) -> str:
        return f"{self.appeal_id} {self.kind}"


def evidence_path(instance: "AppealEvidence", filename: str) -> str:
    # A random name: nothing of the resident's file name (which may hold a name or phone) is kept.
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"appeals/evidence/{clock.local_text(clock.now(), '%Y/%m')}/{uuid.uuid4().hex}.{ext}"


class AppealEvidence(models.Model):
    """A screenshot, re-encoded without metadata, stored in private storage, served by a checked view.

    While a resident is still filling the form the row has no appeal, only the draft key of the
    session; filing attaches it.
    """

    appeal = models.ForeignKey(Appeal, verbose_name=_("appeal"), on_delete=models.CASCADE, null=True, blank=True, related_name="evidence")
    draft_key = models.CharField(_("draft key"), max_length=64, blank=True, default="")
    file = models.FileField(_("file"), upload_to=evidence_path, max_length=200)
    thumbnail = models.FileField(_("thumbnail"), upload_to=evidence_path, max_length=200)
    content_type = models.CharField(_("content type"), max_length=32)
    width = models.PositiveIntegerField(_("width"))
    height = models.PositiveIntegerField(_("height"))
    size_bytes = models.PositiveIntegerField(_("size bytes"))
    sha256 = models.CharField(_("sha256"), max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("uploaded by"), on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    created_at = clock.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("evidence")
        verbose_name_plural = _("evidence")
        indexes = [
            # Draft uploads of one form session; the orphan sweep deletes old ones.
            models.Index(fields=["draft_key"], name="evidence_draft_idx", condition=Q(appeal__isnull=True)),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(appeal__isnull=False) | ~Q(draft_key=""), name="evidence_owned"),
        ]

    def __str__(self) -> str:
        return f"evidence {self.pk}"


class AppealContact(models.Model):
    """One call (or attempt) between the hotline and the resident: the ticket's call log."""

    class Direction(models.TextChoices):
        INBOUND = "inbound", _("Resident called 12345")
        OUTBOUND = "outbound", _("Operator called the resident")

    class Outcome(models.TextChoices):
        REACHED = "reached", _("Spoke with the resident")
        NO_ANSWER = "no_answer", _("No answer")
        BUSY = "busy", _("Line busy")
        DROPPED = "dropped", _("Call dropped")
        WRONG_NUMBER = "wrong_number", _("Wrong number")
        CALL_BACK = "call_back", _("Asked to call back")

    appeal = models.ForeignKey(Appeal, verbose_name=_("appeal"), on_delete=models.CASCADE, related_name="contacts")
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("operator"), on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(_("direction"), max_length=8, choices=Direction.choices)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    note = models.TextField(_("note"), blank=True)
    at = clock.DateTimeField(_("time"), default=clock.now)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("call log entry")
        verbose_name_plural = _("call log")

    def __str__(self) -> str:
        return f"{self.appeal_id} {self.outcome}"


class AppealLink(models.Model):
    """A signed-by-secrecy link sent by SMS (e.g. "add evidence"): expiring and single-use.

    Only the hash of the token is stored, so a database reader cannot forge a working link.
    """

    appeal = models.ForeignKey(Appeal, verbose_name=_("appeal"), on_delete=models.CASCADE, related_name="links")
    purpose = models.CharField(_("purpose"), max_length=20)
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    created_at = clock.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.appeal_id} {self.purpose}"
