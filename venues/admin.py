"""Admin for the venue registry. Risk windows are changed only through the supervisor pages
and API (services run the exposure job), so they are read-only here; scans are not listed
(tens of millions of rows; the visitor register is the audited way to read them)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from communities.admin import ReadOnlyAdmin, ReadOnlyInline
from venues.models import RiskWindow, RiskWindowEvent, ScanBatch, Venue


@admin.register(Venue)
class VenueAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "kind", "district", "community", "active"]
    list_filter = ["kind", "active", "district"]
    search_fields = ["name", "=code", "address"]
    list_select_related = ["district", "community"]
    readonly_fields = ["code", "district", "poster_links", "created_at"]
    raw_id_fields = ["community"]
    filter_horizontal = ["managers"]
    fields = ["code", "name", "kind", "address", "community", "district", "managers", "active",
              "poster_links", "created_at"]

    @admin.display(description=_("Poster"))
    def poster_links(self, obj: Venue) -> str:
        if not obj.pk:
            return "—"
        return format_html('<a href="{}">PNG</a> · <a href="{}">SVG</a>',
                           reverse("venues:venue-poster", args=[obj.pk, "png"]),
                           reverse("venues:venue-poster", args=[obj.pk, "svg"]))

    def save_model(self, request, obj, form, change):
        # The district always follows the community (as venues.services.venue_create does).
        obj.district = obj.community.street.district if obj.community_id else None
        super().save_model(request, obj, form, change)


class RiskWindowEventInline(ReadOnlyInline):
    model = RiskWindowEvent
    readonly_fields = ["at", "kind", "actor", "actor_label", "reason", "data"]


@admin.register(RiskWindow)
class RiskWindowAdmin(ReadOnlyAdmin):
    list_display = ["venue", "starts_at", "ends_at", "risk_level", "state", "version", "exposure_due"]
    list_filter = ["state", "risk_level"]
    search_fields = ["=venue__code", "venue__name"]
    list_select_related = ["venue"]
    inlines = [RiskWindowEventInline]


@admin.register(ScanBatch)
class ScanBatchAdmin(admin.ModelAdmin):
    list_display = ["batch_id", "client", "received_at"]
    search_fields = ["=batch_id"]
    readonly_fields = ["client", "batch_id", "received_at", "response"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
