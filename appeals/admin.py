"""Admin for appeals: read-only (changes go through the console's services, which write history)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from appeals.models import Appeal, AppealContact, AppealEvent, AppealEvidence
from communities.admin import AuditedAdminMixin, ReadOnlyAdmin, ReadOnlyInline


class AppealEventInline(ReadOnlyInline):
    model = AppealEvent
    fields = ("at", "kind", "actor_label", "note", "public")
    readonly_fields = fields
    show_change_link = False


@admin.register(Appeal)
class AppealAdmin(AuditedAdminMixin, ReadOnlyAdmin):
    list_display = ("reference", "status", "priority", "category", "channel", "resident", "assigned_to",
                    "created_at", "sla_due_at", "sla_breached_at")
    list_filter = ("status", "priority", "category", "channel")
    # The exact reference, through its unique index (personal data is searched in the console,
    # hashed and audited); `icontains` read every appeal.
    search_fields = ("reference__exact",)
    search_help_text = _("The exact reference.")
    raw_id_fields = ("resident", "popup", "community", "routed_community", "assigned_to", "merged_into", "created_by")
    exclude = ("contact_phone_encrypted", "contact_phone_hash")
    show_full_result_count = False  # no COUNT(*) over a million appeals per page view
    inlines = [AppealEventInline]

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term.strip().upper())


@admin.register(AppealContact)
class AppealContactAdmin(ReadOnlyAdmin):
    list_display = ("appeal", "at", "direction", "outcome", "operator")
    list_filter = ("direction", "outcome")
    raw_id_fields = ("appeal", "operator")
    show_full_result_count = False


@admin.register(AppealEvidence)
class AppealEvidenceAdmin(ReadOnlyAdmin):
    # Metadata only: the pictures themselves are opened through the checked console view.
    list_display = ("pk", "appeal", "content_type", "width", "height", "size_bytes", "created_at")
    fields = ("appeal", "content_type", "width", "height", "size_bytes", "sha256", "uploaded_by", "created_at")
    readonly_fields = fields
    show_full_result_count = False
