"""The registry: places (district → street → community, compound aliases), residents, staff."""

from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import HashIndex
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from communities import pii
from healthkit import clock


class District(models.Model):
    code = models.CharField(_("code"), max_length=6, unique=True)
    name = models.CharField(_("name"), max_length=32, unique=True)
    name_en = models.CharField(_("English name"), max_length=64, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("district")
        verbose_name_plural = _("districts")

    def __str__(self) -> str:
        return self.name


class County(models.Model):
    """A county-level division anywhere in the country (code as the data feeds send it): how a
    county code in a popup's 'why' is read in words. Loaded by a data migration."""

    code = models.CharField(_("code"), max_length=6, unique=True)
    name = models.CharField(_("name"), max_length=32)
    full_name = models.CharField(_("full name"), max_length=64,
                                 help_text=_("With province and prefecture, e.g. 湖北省武汉市洪山区."))

    class Meta:
        ordering = ["code"]
        verbose_name = _("county")
        verbose_name_plural = _("counties")

    def __str__(self) -> str:
        return self.full_name or self.name


class Street(models.Model):
    """Street (街道) or township (乡镇)."""

    class Kind(models.TextChoices):
        STREET = "street", _("Street")
        TOWNSHIP = "township", _("Township")

    district = models.ForeignKey(District, verbose_name=_("district"), on_delete=models.PROTECT, related_name="streets")
    code = models.CharField(_("code"), max_length=12, unique=True)
    name = models.CharField(_("name"), max_length=64)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.STREET)

    class Meta:
        ordering = ["code"]
        verbose_name = _("street / township")
        verbose_name_plural = _("streets / townships")
        constraints = [
            models.UniqueConstraint(fields=["district", "name"], name="street_unique_name")
        ]

    # What __str__ reads: an admin column of streets joins it (healthkit.admin_site).
    str_select_related = ("district",)

    def __str__(self) -> str:
        return f"{self.district.name}{self.name}"


class Community(models.Model):
    """Community (社区) or village (村): the unit that verifies residents and lifts popups."""

    street = models.ForeignKey(Street, verbose_name=_("street"), on_delete=models.PROTECT, related_name="communities")
    code = models.CharField(_("code"), max_length=15, unique=True)
    name = models.CharField(_("name"), max_length=64)
    phone = models.CharField(_("duty phone"), max_length=20, blank=True)
    address = models.CharField(_("office address"), max_length=200, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("community")
        verbose_name_plural = _("communities")
        constraints = [
            models.UniqueConstraint(fields=["street", "name"], name="community_unique_name")
        ]

    # What __str__ reads: an admin column of communities joins it (healthkit.admin_site).
    str_select_related = ("street__district",)

    def __str__(self) -> str:
        return f"{self.street.district.name}{self.street.name}{self.name}"

    @property
    def district(self) -> District:
        return self.street.district


class CompoundAlias(models.Model):
    """A residential compound (小区) name or address that belongs to a community.

    Residents name the compound, not the community; the finder maps one to the other.
    """

    community = models.ForeignKey(Community, verbose_name=_("community"), on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(_("compound or address"), max_length=128)
    address = models.CharField(_("street address"), max_length=200, blank=True)
    normalized = models.CharField(_("normalized"), max_length=128, editable=False, db_index=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("compound alias")
        verbose_name_plural = _("compound aliases")
        constraints = [
            models.UniqueConstraint(fields=["community", "name"], name="alias_unique_per_community")
        ]

    def __str__(self) -> str:
        return self.name


class Resident(models.Model):
    """A person. The ID number is only ever held encrypted + hashed; use the helpers to show it.

    A resident the retention job (appeals/retention.py) has forgotten keeps the row (so popups,
    results and appeals still count) with no name, no ID (encrypted and masked empty) and the
    keyed hash replaced by FORGOTTEN_PREFIX + the row id: nothing to decrypt, nothing to match.
    """

    FORGOTTEN_PREFIX = "forgotten:"

    name = models.CharField(pgettext_lazy("of a person", "name"), max_length=64)
    id_encrypted = models.TextField(_("id encrypted"), editable=False)
    id_hash = models.CharField(_("id hash"), max_length=64, unique=True, editable=False)
    id_masked = models.CharField(_("ID (masked)"), max_length=18, editable=False)
    community = models.ForeignKey(
        Community, verbose_name=_("community"), on_delete=models.PROTECT, related_name="residents", null=True, blank=True
    )
    created_at = clock.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("resident")
        verbose_name_plural = _("residents")
        indexes = [
            models.Index(fields=["community", "id"], name="resident_community_idx"),
            # The ingest's resident look-up, 10,000 keyed hashes a batch: a hash probe is about a
            # quarter cheaper than the unique B-tree's (docs/engine.md); equality is all it needs.
            HashIndex(fields=["id_hash"], name="resident_id_hash_hash"),
        ]

    def __str__(self) -> str:
        return self.masked

    @property
    def is_forgotten(self) -> bool:
        # The masked ID is loaded wherever a resident is shown (lists load only name and
        # id_masked); reading id_hash here cost one query per row on such pages.
        if "id_hash" in self.get_deferred_fields():
            return not self.id_masked
        return self.id_hash.startswith(self.FORGOTTEN_PREFIX)

    @property
    def masked(self) -> str:
        if self.is_forgotten:
            return str(_("(forgotten, no personal data kept)"))
        return pii.masked_person(self.name, self.id_masked)

    @property
    def masked_name(self) -> str:
        return pii.mask_name(self.name)

    def set_id_number(self, id_number: str) -> None:
        number = pii.validate_id_number(id_number)
        self.id_encrypted = pii.encrypt(number)
        self.id_hash = pii.id_hash(number)
        self.id_masked = pii.mask_id(number)

    def birth_date(self):
        """The birth date in the ID number, for checks only (a signal or a stated date before it);
        never shown, so not a reveal. None for a forgotten resident."""
        return pii.birth_date(pii.decrypt(self.id_encrypted)) if self.id_encrypted else None

    def reveal_id_number(self) -> str:
        """Clear ID: callers must go through communities.services.resident_reveal (audited).
        "" for a forgotten resident (nothing is kept to decrypt)."""
        return pii.decrypt(self.id_encrypted) if self.id_encrypted else ""


class ResidentPhone(models.Model):
    resident = models.ForeignKey(Resident, verbose_name=_("resident"), on_delete=models.CASCADE, related_name="phones")
    phone_encrypted = models.TextField(_("phone encrypted"), editable=False)
    phone_hash = models.CharField(_("phone hash"), max_length=64, db_index=True, editable=False)
    phone_masked = models.CharField(_("phone (masked)"), max_length=16, editable=False)
    is_primary = models.BooleanField(_("primary"), default=True)
    created_at = clock.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-is_primary", "id"]
        verbose_name = _("resident phone")
        verbose_name_plural = _("resident phones")
        constraints = [
            models.UniqueConstraint(fields=["resident", "phone_hash"], name="phone_unique_per_resident")
        ]

    def __str__(self) -> str:
        return self.phone_masked

    def set_phone(self, phone: str) -> None:
        number = pii.validate_phone(phone)
        self.phone_encrypted = pii.encrypt(number)
        self.phone_hash = pii.phone_hash(number)
        self.phone_masked = pii.mask_phone(number)

    def reveal_phone(self) -> str:
        return pii.decrypt(self.phone_encrypted)


class User(AbstractUser):
    """Staff account. Community workers see only the communities attached to them."""

    class Role(models.TextChoices):
        OPERATOR = "operator", _("Hotline operator")
        COMMUNITY_WORKER = "community_worker", _("Community worker")
        SUPERVISOR = "supervisor", _("Supervisor")
        ADMINISTRATOR = "administrator", _("Administrator")
        VENUE_MANAGER = "venue_manager", _("Venue manager")
        INTEGRATION = "integration", _("Integration client")

    class Feed(models.TextChoices):
        """What an integration client may send: one token, one system, only its own feeds. The
        first seven are the ingest kinds (healthkit.models.IngestBatch.Kind)."""

        TEST_RESULTS = "test_results", _("Nucleic-acid test results")
        ARRIVALS = "arrivals", _("Arrivals into the city")
        STAYS = "stays", _("Stays outside the city")
        LOCAL_CASES = "local_cases", _("Local cases per county")
        QUARANTINE_ORDERS = "quarantine_orders", _("Entry quarantine orders")
        MEDICAL_EVENTS = "medical_events", _("Drug purchases and clinic visits")
        POPUP_ASSIGNMENTS = "popup_assignments", _("Upstream popup assignments")
        VENUE_SCANS = "venue_scans", _("Venue scans")
        SMS_RECEIPTS = "sms_receipts", _("SMS delivery receipts")
        OPEN311 = "open311", _("Open311 appeals")

    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.OPERATOR)
    communities = models.ManyToManyField(
        Community, blank=True, related_name="workers", verbose_name=_("communities served")
    )
    feeds = ArrayField(
        models.CharField(max_length=20, choices=Feed.choices), default=list, blank=True, verbose_name=_("feeds"),
        help_text=_("Integration clients only: the feeds this client's token may send. None ticked: a lab's "
                    "client (lab below) sends its test results only, any other client every feed."),
    )
    lab = models.CharField(
        _("lab"), max_length=64, blank=True,
        help_text=_("Integration clients sending test results: the lab every result must name. Leave empty "
                    "only for a platform relaying many labs (the national platform)."),
    )

    class Meta:
        verbose_name = _("staff user")
        verbose_name_plural = _("staff users")

    @property
    def sees_all_communities(self) -> bool:
        return self.role in {self.Role.OPERATOR, self.Role.SUPERVISOR, self.Role.ADMINISTRATOR}

    def set_password(self, raw_password: str | None) -> None:
        """Every password change (console, admin, `changepassword`, a reset) goes through here, so
        here it also ends a person's API token (healthkit.auth.api_tokens_revoke, which this app
        may not import): whoever held the old password may have taken the token with it.
        Integration clients' tokens are rotated by an administrator instead."""
        super().set_password(raw_password)
        if self.pk is not None and (self.is_superuser or self.role != self.Role.INTEGRATION):
            from rest_framework.authtoken.models import Token

            Token.objects.filter(user_id=self.pk).delete()


class PersonalDataAccess(models.Model):
    """Append-only audit of every look at or reveal of a person's data.

    The database refuses UPDATE and DELETE of these rows (trigger, migration 0003), so nobody,
    not even the application, can rewrite who looked at whom. The row holds no free text: the
    reason a person typed lives in PersonalDataAccessReason, which the retention job deletes
    after AUDIT_REASON_RETENTION_DAYS; `context` is a code written by the program
    ("appeal:12", "evidence:5/thumbnail"), never personal data.
    """

    class Action(models.TextChoices):
        VIEW = "view", _("Viewed")
        REVEAL_ID = "reveal_id", _("Revealed ID number")
        REVEAL_PHONE = "reveal_phone", _("Revealed phone")
        LOOKUP = "lookup", _("Looked up by ID")
        EXPORT = "export", _("Exported")

    actor = models.ForeignKey(User, verbose_name=_("actor"), on_delete=models.PROTECT, related_name="+")
    resident = models.ForeignKey(
        Resident, verbose_name=_("resident"), on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    action = models.CharField(_("action"), max_length=16, choices=Action.choices)
    context = models.CharField(_("where"), max_length=120, blank=True)
    ip = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    at = clock.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at"]
        verbose_name = _("personal data access")
        verbose_name_plural = _("personal data accesses")
        indexes = [
            models.Index(fields=["resident", "-at"], name="pda_resident_idx"),
            # The enumeration alarm counts one account's (or address's) residents in a window.
            models.Index(fields=["actor", "at"], name="pda_actor_at_idx"),
            models.Index(fields=["ip", "at"], name="pda_ip_at_idx", condition=models.Q(ip__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {clock.local_text(self.at, '%Y-%m-%d %H:%M')}"

    @property
    def reason(self) -> str:
        """The typed reason while it is kept (see PersonalDataAccessReason), else ""."""
        try:
            return self.reason_note.reason
        except PersonalDataAccessReason.DoesNotExist:
            return ""

    reason.fget.short_description = _("reason")  # the admin's column header


class PersonalDataAccessReason(models.Model):
    """The free-text reason typed for an audited access, kept apart from the append-only row so
    it can be forgotten on schedule (staff sometimes type a name or a phone into it). The
    database refuses UPDATE (what was typed is not rewritten); DELETE is the retention job's."""

    access = models.OneToOneField(PersonalDataAccess, verbose_name=_("access"), on_delete=models.DO_NOTHING, primary_key=True,
                                  related_name="reason_note")
    reason = models.CharField(_("reason"), max_length=200)

    class Meta:
        verbose_name = _("reason for an access")
        verbose_name_plural = _("reasons for accesses")

    def __str__(self) -> str:
        return f"{self.access_id}"


class AuditAlert(models.Model):
    """One account (or client address) touched many different residents within a short window:
    what someone browsing or harvesting the registry looks like. Raised by
    communities.services.access_log, shown to supervisors until one acknowledges it."""

    class Kind(models.TextChoices):
        ACCOUNT = "account", _("One account")
        ADDRESS = "address", _("One client address")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    actor = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                              verbose_name=_("account"))
    ip = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    residents = models.PositiveIntegerField(_("different residents"))
    window_minutes = models.PositiveIntegerField(_("within minutes"))
    raised_at = clock.DateTimeField(_("raised at"), auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(User, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                        verbose_name=_("acknowledged by"))

    class Meta:
        ordering = ["-raised_at"]
        verbose_name = _("enumeration alert")
        verbose_name_plural = _("enumeration alerts")
        indexes = [models.Index(fields=["raised_at"], name="audit_alert_open_idx",
                                condition=models.Q(acknowledged_at__isnull=True))]

    def __str__(self) -> str:
        return f"{self.kind} {self.residents} @ {clock.local_text(self.raised_at, '%Y-%m-%d %H:%M')}"
