"""Admin for the popup core; history rows are read-only (append-only log)."""

import copy

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework.authtoken.admin import TokenAdmin as DrfTokenAdmin
from rest_framework.authtoken.models import TokenProxy

from communities.admin import AuditedAdminMixin, ReadOnlyAdmin, ReadOnlyInline
from healthkit import clock, outbox, services, sms
from healthkit.admin_site import bulk_action_rows
from healthkit.errors import ApplicationError
from healthkit.models import (
    Arrival,
    DownstreamEndpoint,
    EngineSweep,
    HealthStatusOrder,
    IngestBatch,
    LocalCase,
    MedicalEvent,
    OutboxAttempt,
    OutboxDelivery,
    OutboxRecord,
    PopupAssignment,
    PopupCase,
    PopupEvent,
    PopupPolicy,
    QuarantineOrder,
    SmsMessage,
    Stay,
    TestRequirement,
    TestResult,
)


class PopupPolicyForm(forms.ModelForm):
    """A version is checked as a whole against its type's others (services.policy_version_check):
    no change to the rules of an instant already past, no gap, no overlap. A new version starting
    inside the one in force ends that one where it starts (policy_version_save), so the overlap
    the database's exclusion constraint sees between the two rows is not an error here."""

    class Meta:
        model = PopupPolicy
        fields = ["popup_type", "version", "effective_from", "effective_to", "params", "source"]
        help_texts = {
            "effective_from": _("City time (UTC+8), from now on: a change never applies to the past. A new "
                                "version ends the one in force where it starts."),
            "effective_to": _("Leave empty: it ends where the version it replaces ended (open-ended if that "
                              "one was). To end a rule, add a version (abolished, if it is) from that instant."),
        }

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            services.policy_version_check(policy=self.instance_with(cleaned))
        except ApplicationError as error:
            field = error.extra.get("field")
            self.add_error(field if field in self.fields else None, error.message)
        return cleaned

    def instance_with(self, cleaned) -> PopupPolicy:
        policy = copy.copy(self.instance)
        for name in self._meta.fields:
            if name in cleaned:
                setattr(policy, name, cleaned[name])
        return policy

    def _get_validation_exclusions(self):
        # The model's own checks of the window (its order, the one-version-at-a-time exclusion
        # constraint, which would see the version a new one ends as an overlap) are left to
        # policy_version_check above, which checks both against the change as a whole.
        return {*super()._get_validation_exclusions(), "effective_to"}


@admin.register(PopupPolicy)
class PopupPolicyAdmin(admin.ModelAdmin):
    """Versions are added and changed through services.policy_version_save and withdrawn through
    policy_version_withdraw (only before they take effect), never row by row."""

    form = PopupPolicyForm
    list_display = ["popup_type", "version", "effective_from", "effective_to", "source"]
    list_filter = ["popup_type"]

    def save_model(self, request, obj, form, change):
        services.policy_version_save(policy=obj)

    def delete_model(self, request, obj):
        services.policy_version_withdraw(policy=obj)

    def delete_queryset(self, request, queryset):
        for policy in queryset.order_by("-effective_from"):  # each one's period back to the one before
            services.policy_version_withdraw(policy=policy)

    def get_deleted_objects(self, objs, request):
        """A version in force or past decided popups: the delete page names it and Django
        refuses the delete (only a version not yet in force can be withdrawn)."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        now = clock.now()
        decided = [_("Version %(version)s has been in force since %(start)s: add a new version from now on "
                     "instead of withdrawing it.") % {"version": p.version, "start": services.policy_time(p.effective_from)}
                   for p in objs if p.effective_from < now]
        return (deleted, counts, perms_needed, [*protected, *decided]) if decided else (deleted, counts, perms_needed, protected)


class PopupEventInline(ReadOnlyInline):
    model = PopupEvent
    fields = ["at", "kind", "from_state", "to_state", "actor", "actor_label", "reason", "data"]
    readonly_fields = fields


@admin.register(PopupCase)
class PopupCaseAdmin(AuditedAdminMixin, ReadOnlyAdmin):
    """Read-only: a popup changes only through the engine and the services (popup_lift, ...),
    which write its event log and the outbox; an edit here would bypass both."""

    list_display = ["id", "resident", "popup_type", "state", "source", "raised_at", "lifted_at"]
    list_filter = ["popup_type", "state", "source"]
    list_select_related = ["resident"]
    raw_id_fields = ["resident"]
    readonly_fields = ["state", "raised_at", "lifted_at", "policy", "updated_at"]
    date_hierarchy = "raised_at"
    show_full_result_count = False
    inlines = [PopupEventInline]


@admin.register(PopupEvent)
class PopupEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "case", "kind", "from_state", "to_state", "actor_label"]
    list_filter = ["kind"]
    show_full_result_count = False


@admin.register(TestResult)
class TestResultAdmin(ReadOnlyAdmin):
    """Read-only: results arrive through the ingest API (which re-evaluates the resident); an
    edit here would change the health code without an audit trail or a re-evaluation."""

    list_display = ["sample_id", "lab", "resident", "result", "sampled_at", "received_at", "from_other_province"]
    list_filter = ["result", "from_other_province"]
    list_select_related = ["resident"]
    raw_id_fields = ["resident"]
    # The lab and the sample id, exact, through the current results' unique key (lab, sample
    # id, resident): `icontains` on the sample id read every result (0.15-0.45 s at 1 M).
    search_fields = ["sample_id"]
    search_help_text = _("The lab and the sample id of a current result, exact: lab-03/S0000012.")
    indexed_search = True
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        lab, _slash, sample_id = term.partition("/")
        if not (lab.strip() and sample_id.strip()):
            self.message_user(request, _("Give the lab and the sample id, as lab-03/S0000012."), messages.WARNING)
            return queryset.none(), False
        return queryset.filter(lab=lab.strip(), sample_id=sample_id.strip(), superseded_at__isnull=True), False


@admin.register(HealthStatusOrder)
class HealthStatusOrderAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["resident", "status", "starts_at", "ends_at", "reason"]
    list_filter = ["status"]
    raw_id_fields = ["resident", "ordered_by"]
    list_select_related = ["resident"]


@admin.register(SmsMessage)
class SmsMessageAdmin(AuditedAdminMixin, ReadOnlyAdmin):
    list_display = ["created_at", "purpose", "phone_masked", "state", "attempts", "last_error", "sent_at"]
    list_filter = ["state", "purpose"]
    exclude = ["phone_encrypted", "pending_encrypted"]
    actions = ["requeue"]

    @admin.action(description=_("Send again (dead or failed SMS)"), permissions=["requeue"])
    def requeue(self, request, queryset):
        rows = bulk_action_rows(self, request, queryset.filter(state__in=[SmsMessage.State.DEAD, SmsMessage.State.FAILED]),
                                question=lambda n: ngettext("This will send %(n)s dead or failed SMS again.",
                                                           "This will send %(n)s dead or failed SMS again.", n)
                                % {"n": f"{n:,}"})
        if not isinstance(rows, QuerySet):
            return rows  # the question, or nothing to do
        result = sms.sms_requeue(messages=rows)
        self.message_user(request, ngettext("%(n)d SMS queued again.", "%(n)d SMS queued again.", result.requeued)
                          % {"n": result.requeued}, messages.SUCCESS)
        if result.needs_new_credential:
            self.message_user(request, ngettext(
                "%(n)d SMS carried a one-time code or link that was given up: issue a new one "
                "(the resident asks for a new code; the clearance task page sends a new link).",
                "%(n)d SMS carried a one-time code or link that was given up: issue a new one "
                "(the resident asks for a new code; the clearance task page sends a new link).",
                result.needs_new_credential) % {"n": result.needs_new_credential}, messages.WARNING)

    def has_requeue_permission(self, request) -> bool:
        return request.user.has_perm("healthkit.change_smsmessage")


# --- Signals in (read-only: they arrive through the ingest API) ------------------------------


@admin.register(IngestBatch)
class IngestBatchAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "kind", "batch_id", "client", "records", "accepted", "duplicates", "rejected"]
    list_filter = ["kind"]
    search_fields = ["batch_id"]
    show_full_result_count = False


class _SignalAdmin(ReadOnlyAdmin):
    list_select_related = ["resident"]
    show_full_result_count = False


@admin.register(Arrival)
class ArrivalAdmin(_SignalAdmin):
    list_display = ["arrived_at", "resident", "from_county", "received_at"]


@admin.register(Stay)
class StayAdmin(_SignalAdmin):
    list_display = ["started_at", "ended_at", "resident", "county", "border_port", "received_at"]
    list_filter = ["border_port"]


@admin.register(LocalCase)
class LocalCaseAdmin(ReadOnlyAdmin):
    list_display = ["reported_at", "county", "received_at"]
    search_fields = ["county"]
    show_full_result_count = False


@admin.register(QuarantineOrder)
class QuarantineOrderAdmin(_SignalAdmin):
    list_display = ["starts_at", "ends_at", "resident", "received_at"]


@admin.register(MedicalEvent)
class MedicalEventAdmin(_SignalAdmin):
    list_display = ["occurred_at", "kind", "detail", "resident", "received_at"]
    list_filter = ["kind"]


@admin.register(PopupAssignment)
class PopupAssignmentAdmin(_SignalAdmin):
    list_display = ["assigned_at", "popup_type", "reason", "resident", "case"]


@admin.register(TestRequirement)
class TestRequirementAdmin(_SignalAdmin):
    list_display = ["trigger_at", "deadline_at", "kind", "reason", "resident"]
    list_filter = ["kind"]


# --- Outbox to the ticket-restriction systems -------------------------------------------------


@admin.register(DownstreamEndpoint)
class DownstreamEndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "url", "active", "send_id_number", "pending", "failing", "dead"]
    list_filter = ["active"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "url":
            kwargs["assume_scheme"] = "https"  # a URL typed without a scheme is https
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def _count(self, obj, *states) -> int:
        return obj.deliveries.filter(state__in=states).count()

    @admin.display(description=_("pending"))
    def pending(self, obj) -> int:
        return self._count(obj, OutboxDelivery.State.PENDING)

    @admin.display(description=_("failing"))
    def failing(self, obj) -> int:
        return self._count(obj, OutboxDelivery.State.FAILED)

    @admin.display(description=_("dead"))
    def dead(self, obj) -> int:
        return self._count(obj, OutboxDelivery.State.DEAD)


@admin.register(OutboxRecord)
class OutboxRecordAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "popup_type", "case", "at", "idempotency_key"]
    list_filter = ["kind", "popup_type"]
    exclude = ["resident", "resident_ids"]  # a batch's popups: `case_ids`
    show_full_result_count = False


class OutboxAttemptInline(ReadOnlyInline):
    model = OutboxAttempt
    fields = ["at", "ok", "status_code", "error", "duration_ms"]
    readonly_fields = fields


@admin.register(OutboxDelivery)
class OutboxDeliveryAdmin(ReadOnlyAdmin):
    """The per-endpoint delivery log: each row's attempts inline; requeue dead or failed rows."""

    list_display = ["id", "endpoint", "record", "state", "attempts", "next_attempt_at", "last_error", "delivered_at"]
    list_filter = ["endpoint", "state"]
    list_select_related = ["endpoint", "record"]
    exclude = ["resident"]
    inlines = [OutboxAttemptInline]
    actions = ["requeue"]
    show_full_result_count = False

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("healthkit.change_outboxdelivery")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name != "resident"]

    @admin.action(description=_("Retry now (dead or failed rows)"))
    def requeue(self, request, queryset):
        dead = queryset.filter(state__in=[OutboxDelivery.State.DEAD, OutboxDelivery.State.FAILED])
        rows = bulk_action_rows(self, request, dead,
                                question=lambda n: ngettext("This will requeue %(n)s dead or failed delivery.",
                                                           "This will requeue %(n)s dead or failed deliveries.", n)
                                % {"n": f"{n:,}"})
        if not isinstance(rows, QuerySet):
            return rows  # the question, or nothing to do
        count = outbox.delivery_requeue(deliveries=rows)
        outbox.dispatch_on_commit()
        self.message_user(request, ngettext("%(n)d delivery requeued.", "%(n)d deliveries requeued.", count)
                          % {"n": count}, messages.SUCCESS)


@admin.register(OutboxAttempt)
class OutboxAttemptAdmin(ReadOnlyAdmin):
    list_display = ["at", "delivery", "ok", "status_code", "error", "duration_ms"]
    list_filter = ["ok", "delivery__endpoint"]
    list_select_related = ["delivery__endpoint"]
    show_full_result_count = False


@admin.register(EngineSweep)
class EngineSweepAdmin(ReadOnlyAdmin):
    list_display = ["at", "full", "residents", "raised", "lifted", "duration_ms"]
    list_filter = ["full"]
    show_full_result_count = False


# --- Second factor devices (django-otp) --------------------------------------------------------
# django-otp's own admin writes its labels in English only and, by default, shows each device's
# secret key and a QR code to enrol it elsewhere (OTP_ADMIN_HIDE_SENSITIVE_DATA, set in settings):
# here the same admin with the labels in the reader's language.
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin as _OtpTOTPDeviceAdmin  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

_TOTP_LABELS = {
    "user": (_("user"), _("The staff account this authenticator belongs to.")),
    "name": (_("device name"), _("A name to tell this user's authenticators apart.")),
    "confirmed": (_("confirmed"), _("Confirmed with a code from the app: only then is it accepted at sign-in.")),
    "created_at": (_("created at"), None),
    "last_used_at": (_("last used at"), None),
    "key": (_("secret key"), _("Hex-encoded; shown only while a device is added.")),
    "step": (_("time step (seconds)"), None),
    "t0": (_("start of counting (Unix time)"), None),
    "digits": (_("digits"), None),
    "tolerance": (_("tolerance (time steps)"), None),
    "drift": (_("clock drift (time steps)"), None),
    "throttling_failure_timestamp": (_("last failed code at"), None),
    "throttling_failure_count": (_("failed codes in a row"), None),
}


class _ConfirmedFilter(admin.SimpleListFilter):
    title = _("confirmed")
    parameter_name = "confirmed"

    def lookups(self, request, model_admin):
        return [("1", _("Yes")), ("0", _("No"))]

    def queryset(self, request, queryset):
        if self.value() in ("0", "1"):
            return queryset.filter(confirmed=self.value() == "1")
        return queryset


def _totp_column(name: str):
    def column(device: TOTPDevice):
        return getattr(device, name)

    column.short_description = _TOTP_LABELS[name][0]
    column.admin_order_field = name
    if name == "confirmed":
        column.boolean = True
    return column


class TOTPDeviceAdmin(_OtpTOTPDeviceAdmin):
    """django-otp's TOTP device admin (enrolment and throttling are its own), in the reader's
    language: columns, filter, search hint, form labels and sections."""

    list_display = [_totp_column(name) for name in ("user", "name", "created_at", "last_used_at", "confirmed")]
    list_filter = [_ConfirmedFilter]
    search_help_text = _("Search by the user's username")
    _SECTIONS = {"Identity": _("Identity"), "Timestamps": _("Created and last used"), "Configuration": _("Configuration"),
                 "State": _("State"), "Throttling": _("Throttling")}

    def get_fieldsets(self, request, obj=None):
        return [(self._SECTIONS.get(title, title),
                 {**options, "fields": [self._READONLY.get(name, name) for name in options["fields"]]})
                for title, options in super().get_fieldsets(request, obj)]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and db_field.name in _TOTP_LABELS:
            field.label, help_text = _TOTP_LABELS[db_field.name]
            field.help_text = help_text or ""
        return field

    # The times are read-only: the admin labels a read-only model field by its (English)
    # verbose name, so the form shows them through these two columns instead.
    readonly_fields = ["created", "last_used", "qrcode_link"]
    created = staticmethod(_totp_column("created_at"))
    last_used = staticmethod(_totp_column("last_used_at"))
    _READONLY = {"created_at": "created", "last_used_at": "last_used"}


if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, TOTPDeviceAdmin)


# --- API tokens (DRF's admin, with the issuing rule of healthkit.auth) ------------------------------

class _TokenIssueForm(forms.ModelForm):
    def clean_user(self):
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from healthkit.auth import staff_token

        user = self.cleaned_data["user"]
        if staff_token(user) and not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise forms.ValidationError(_("A staff member gets an API token only with a confirmed second factor: "
                                          "they enrol an authenticator app in the console first."))
        return user


admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class ApiTokenAdmin(DrfTokenAdmin):
    """Issue (add), rotate (delete, then add again) and revoke (delete) API tokens. A staff
    member's token lasts STAFF_API_TOKEN_HOURS and needs their second factor; an integration
    client's lasts until rotated."""

    form = _TokenIssueForm

    # A token acts as its user: only a superuser issues, sees or deletes one (a staff member given
    # the token permissions could otherwise take an administrator's powers through the API).
    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission
