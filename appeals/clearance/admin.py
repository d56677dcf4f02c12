"""Admin: clearance tasks are read-only here (decisions go through the worker console, which
records actor and reason); personal data stays masked."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from appeals.clearance.models import ClearanceEvent, ClearanceLink, ClearanceTask
from communities.admin import AuditedAdminMixin, ReadOnlyAdmin, ReadOnlyInline
from healthkit import inputs


class ClearanceEventInline(ReadOnlyInline):
    model = ClearanceEvent
    fields = ("at", "kind", "from_state", "to_state", "actor", "actor_label", "reason", "data")
    readonly_fields = fields


class ClearanceLinkInline(ReadOnlyInline):
    model = ClearanceLink
    # Never the token hash: it is of no use to anyone reading the admin.
    fields = ("purpose", "created_at", "expires_at", "used_at", "revoked_at")
    readonly_fields = fields


@admin.register(ClearanceTask)
class ClearanceTaskAdmin(AuditedAdminMixin, ReadOnlyAdmin):
    list_display = ("__str__", "community", "masked_resident", "origin", "state", "priority", "sla_due_at",
                    "created_at")
    list_filter = ("state", "origin", "priority")
    list_select_related = ("community", "resident")
    # A task's number (C123 or 123), by its key: Django's `=id` compared the key as text,
    # which no index serves.
    search_fields = ("id",)
    search_help_text = _("The task's number, e.g. C123.")
    indexed_search = True
    date_hierarchy = "created_at"
    exclude = ("contact_phone_encrypted", "commitment_digest")
    raw_id_fields = ("resident", "popup", "appeal", "community", "decided_by")
    inlines = [ClearanceLinkInline, ClearanceEventInline]

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(pk=inputs.key(search_term.strip().upper().removeprefix("C"))), False

    @admin.display(description=_("resident"))
    def masked_resident(self, obj: ClearanceTask) -> str:
        return obj.resident.masked
