"""Admin for the popup core; history rows are read-only (append-only log)."""

from django.contrib import admin

from healthkit.models import (
    HealthStatusOrder,
    PopupCase,
    PopupEvent,
    PopupPolicy,
    SmsMessage,
    TestResult,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PopupPolicy)
class PopupPolicyAdmin(admin.ModelAdmin):
    list_display = ["popup_type", "version", "effective_from", "effective_to", "source"]
    list_filter = ["popup_type"]


class PopupEventInline(admin.TabularInline):
    model = PopupEvent
    extra = 0
    can_delete = False
    fields = ["at", "kind", "from_state", "to_state", "actor", "actor_label", "reason", "data"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PopupCase)
class PopupCaseAdmin(admin.ModelAdmin):
    list_display = ["id", "resident", "popup_type", "state", "source", "raised_at", "lifted_at"]
    list_filter = ["popup_type", "state", "source"]
    list_select_related = ["resident"]
    raw_id_fields = ["resident"]
    readonly_fields = ["state", "raised_at", "lifted_at", "policy", "updated_at"]
    date_hierarchy = "raised_at"
    show_full_result_count = False
    inlines = [PopupEventInline]

    def has_add_permission(self, request) -> bool:
        return False  # popups are raised by the engine or services, never typed in


@admin.register(PopupEvent)
class PopupEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "case", "kind", "from_state", "to_state", "actor_label"]
    list_filter = ["kind"]
    show_full_result_count = False


@admin.register(TestResult)
class TestResultAdmin(admin.ModelAdmin):
    list_display = ["sample_id", "lab", "resident", "result", "sampled_at", "received_at", "from_other_province"]
    list_filter = ["result", "from_other_province"]
    list_select_related = ["resident"]
    raw_id_fields = ["resident"]
    search_fields = ["sample_id"]
    show_full_result_count = False


@admin.register(HealthStatusOrder)
class HealthStatusOrderAdmin(admin.ModelAdmin):
    list_display = ["resident", "status", "starts_at", "ends_at", "reason"]
    list_filter = ["status"]
    raw_id_fields = ["resident", "ordered_by"]
    list_select_related = ["resident"]


@admin.register(SmsMessage)
class SmsMessageAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "purpose", "phone_masked", "state", "attempts", "sent_at"]
    list_filter = ["state", "purpose"]
    exclude = ["phone_encrypted"]
