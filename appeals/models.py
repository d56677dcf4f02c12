"""Appeals (12345 tickets): filed online or by phone, triaged by operators, routed to communities."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from communities.models import Community, Resident
from healthkit.models import PopupCase


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

    reference = models.CharField(_("reference"), max_length=20, unique=True)
    resident = models.ForeignKey(Resident, on_delete=models.PROTECT, related_name="appeals")
    # Null when the resident reports a popup our records do not show.
    popup = models.ForeignKey(PopupCase, on_delete=models.PROTECT, null=True, blank=True, related_name="appeals")
    popup_type_claimed = models.PositiveSmallIntegerField(_("popup type (as reported)"), null=True, blank=True)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.NEW)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, default=Channel.ONLINE)
    community = models.ForeignKey(Community, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="appeals", verbose_name=_("community (confirmed by resident)"))
    address_text = models.CharField(_("address as written"), max_length=200, blank=True)
    contact_phone_encrypted = models.TextField(blank=True, editable=False)
    contact_phone_masked = models.CharField(_("contact phone"), max_length=16, blank=True)
    description = models.TextField(_("description"), blank=True)
    currently_outside_city = models.BooleanField(_("currently outside the city"), default=False)
    outside_since = models.DateField(_("outside the city since"), null=True, blank=True)
    wishes_to_return = models.BooleanField(_("wishes to return"), default=False)
    repeat_count = models.PositiveIntegerField(_("repeats"), default=0)
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="assigned_appeals", verbose_name=_("assigned to"))
    routed_community = models.ForeignKey(Community, on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="routed_appeals", verbose_name=_("routed to community"))
    routed_at = models.DateTimeField(_("routed at"), null=True, blank=True)
    merged_into = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="merged")
    sla_due_at = models.DateTimeField(_("SLA due"), null=True, blank=True)
    sla_breached_at = models.DateTimeField(_("SLA breached at"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    created_at = models.DateTimeField(_("filed at"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
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
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class AppealEvent(models.Model):
    """Append-only history of an appeal; the status page shows these in plain words."""

    appeal = models.ForeignKey(Appeal, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor_label = models.CharField(max_length=64, blank=True)
    note = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    public = models.BooleanField(default=True, help_text=_("Shown to the resident on the status page."))
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("appeal event")
        verbose_name_plural = _("appeal events")

    def __str__(self) -> str:
        return f"{self.appeal_id} {self.kind}"
