"""Admin for the registry. Personal data appears masked; search by exact ID goes through the hash."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from communities import pii
from communities.models import (
    Community,
    CompoundAlias,
    District,
    PersonalDataAccess,
    Resident,
    ResidentPhone,
    Street,
    User,
)
from communities.services import access_log, normalize_place_text


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by services (audits, events, signals): the admin shows, never edits."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AuditedAdminMixin:
    """Admin pages of one person's records: opening one (change, history or delete page) writes
    the access audit, here in get_object, the one place every such page reads the object."""

    # the attribute holding the resident's primary key ("pk" for the resident itself)
    audit_resident_attr = "resident_id"

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            access_log(actor=request.user, resident_id=getattr(obj, self.audit_resident_attr),
                       action=PersonalDataAccess.Action.VIEW,
                       context=f"admin:{obj._meta.label_lower}:{obj.pk}")
        return obj


class ReadOnlyInline(admin.TabularInline):
    """A service-written history shown under its parent (events, links, attempts): listed, never
    added, edited or deleted here."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(District)
class DistrictAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en"]
    search_fields = ["name", "name_en", "code"]


@admin.register(Street)
class StreetAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "district"]
    list_filter = ["district", "kind"]
    search_fields = ["name", "code"]
    list_select_related = ["district"]


class CompoundAliasInline(admin.TabularInline):
    model = CompoundAlias
    extra = 0
    fields = ["name", "address"]


@admin.register(Community)
class CommunityAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "street", "phone"]
    list_filter = ["street__district"]
    search_fields = ["name", "code", "aliases__name"]
    list_select_related = ["street__district"]
    autocomplete_fields = ["street"]
    inlines = [CompoundAliasInline]

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for alias in instances:
            alias.normalized = normalize_place_text(alias.name)
            alias.save()
        for obj in formset.deleted_objects:
            obj.delete()


@admin.register(CompoundAlias)
class CompoundAliasAdmin(admin.ModelAdmin):
    list_display = ["name", "address", "community"]
    search_fields = ["name", "address", "community__name"]
    autocomplete_fields = ["community"]
    list_select_related = ["community__street__district"]

    def save_model(self, request, obj, form, change):
        obj.normalized = normalize_place_text(obj.name)
        super().save_model(request, obj, form, change)


class ResidentForm(forms.ModelForm):
    id_number = forms.CharField(
        label=_("ID number"), required=False, max_length=18,
        help_text=_("Stored encrypted; leave empty to keep the current one."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    class Meta:
        model = Resident
        fields = ["name", "community"]

    def clean_id_number(self) -> str:
        value = self.cleaned_data.get("id_number", "")
        if not value:
            if not self.instance.pk:
                raise ValidationError(_("An ID number is required for a new resident."))
            return ""
        number = pii.validate_id_number(value)
        clash = Resident.objects.filter(id_hash=pii.id_hash(number)).exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(_("Another resident already has this ID number."))
        return number

    def save(self, commit: bool = True) -> Resident:
        resident = super().save(commit=False)
        if self.cleaned_data.get("id_number"):
            resident.set_id_number(self.cleaned_data["id_number"])
        if commit:
            resident.save()
        return resident


class ResidentPhoneForm(forms.ModelForm):
    phone = forms.CharField(label=_("phone"), max_length=20, required=False)

    class Meta:
        model = ResidentPhone
        fields = ["is_primary"]

    def clean_phone(self) -> str:
        value = self.cleaned_data.get("phone", "")
        if not value and not self.instance.pk:
            raise ValidationError(_("Enter a phone number."))
        return pii.validate_phone(value) if value else ""

    def save(self, commit: bool = True) -> ResidentPhone:
        entry = super().save(commit=False)
        if self.cleaned_data.get("phone"):
            entry.set_phone(self.cleaned_data["phone"])
        if commit:
            entry.save()
        return entry


class ResidentPhoneInline(admin.TabularInline):
    model = ResidentPhone
    form = ResidentPhoneForm
    extra = 0
    fields = ["phone_masked", "phone", "is_primary"]
    readonly_fields = ["phone_masked"]


class ResidentLookupForm(forms.Form):
    id_or_phone = forms.CharField(label=_("Exact ID number or phone"), max_length=24,
                                  widget=forms.TextInput(attrs={"autocomplete": "off"}))


@admin.register(Resident)
class ResidentAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Exact look-up by ID or phone is a POST (the number never lands in a URL or access log),
    matched through the keyed hash and audited; the GET search box takes names only."""

    audit_resident_attr = "pk"

    form = ResidentForm
    change_list_template = "admin/communities/resident/change_list.html"
    list_display = ["masked_name", "id_masked", "community", "created_at"]
    list_select_related = ["community__street__district"]
    list_filter = ["community__street__district"]
    search_fields = ["name"]
    search_help_text = _("Name (starts with). For an exact ID number or phone use the look-up form.")
    readonly_fields = ["id_masked"]
    autocomplete_fields = ["community"]
    inlines = [ResidentPhoneInline]
    show_full_result_count = False

    @admin.display(description=pgettext_lazy("of a person", "name"))
    def masked_name(self, obj: Resident) -> str:
        return obj.masked_name

    def get_urls(self):
        return [
            path("lookup/", self.admin_site.admin_view(self.lookup_view), name="communities_resident_lookup"),
            *super().get_urls(),
        ]

    def lookup_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return redirect("admin:communities_resident_changelist")
        form = ResidentLookupForm(request.POST)
        matches = Resident.objects.none()
        if form.is_valid():
            term = form.cleaned_data["id_or_phone"]
            try:
                matches = Resident.objects.filter(id_hash=pii.id_hash(pii.validate_id_number(term)))
            except ValidationError:
                try:
                    phone_hash = pii.phone_hash(pii.validate_phone(term))
                    matches = Resident.objects.filter(phones__phone_hash=phone_hash).distinct()
                except ValidationError:
                    messages.error(request, _("That is neither a valid ID number nor a mobile number."))
                    return redirect("admin:communities_resident_changelist")
        found = list(matches[:20])
        for resident in found:
            access_log(actor=request.user, resident=resident, action=PersonalDataAccess.Action.LOOKUP,
                       context="admin:resident-lookup")
        if len(found) == 1:
            return redirect("admin:communities_resident_change", found[0].pk)
        if not found:
            messages.warning(request, _("No resident has that number."))
            return redirect("admin:communities_resident_changelist")
        ids = ",".join(str(r.pk) for r in found)
        return redirect(reverse("admin:communities_resident_changelist") + f"?id__in={ids}")

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "lookup_form": ResidentLookupForm()}
        return super().changelist_view(request, extra_context)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if any(ch.isdigit() for ch in term):
            messages.info(request, _("Numbers are not searched here: use the exact look-up form."))
            return queryset.none(), False
        return queryset.filter(name__startswith=term), False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "first_name", "last_name", "role", "is_active"]
    list_filter = ["role", "is_active", "is_staff"]
    fieldsets = (*DjangoUserAdmin.fieldsets,
                 (_("Role and scope"), {"fields": ["role", "communities", "feeds", "lab"]}))
    add_fieldsets = (*DjangoUserAdmin.add_fieldsets, (_("Role and scope"), {"fields": ["role"]}))
    filter_horizontal = ["communities", "groups", "user_permissions"]

    # Who may grant what: an account manager who is not a superuser (a supervisor given the
    # "change user" permission) manages staff below them, and cannot raise anybody, themselves
    # included, to the admin's powers: superuser, staff status, groups and permissions are
    # superusers' to give, so is the administrator role, and administrators' and superusers'
    # accounts (their passwords too) are theirs to change.
    PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "groups", "user_permissions")

    def _above(self, request, obj) -> bool:
        return obj is not None and not request.user.is_superuser and (
            obj.is_superuser or obj.role == User.Role.ADMINISTRATOR)

    def has_change_permission(self, request, obj=None) -> bool:
        return not self._above(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not self._above(request, obj) and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += [*self.PRIVILEGE_FIELDS, *(["role"] if obj is not None and obj.pk == request.user.pk else [])]
        return fields

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role" and not request.user.is_superuser:
            kwargs["choices"] = [(value, label) for value, label in User.Role.choices
                                 if value != User.Role.ADMINISTRATOR]
        return super().formfield_for_choice_field(db_field, request, **kwargs)


@admin.register(PersonalDataAccess)
class PersonalDataAccessAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "resident", "context", "ip", "reason"]
    list_filter = ["action"]
    list_select_related = ["actor", "resident", "reason_note"]
    date_hierarchy = "at"



@admin.register(ResidentPhone)
class ResidentPhoneAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = ResidentPhoneForm
    list_display = ["phone_masked", "resident", "is_primary", "created_at"]
    list_select_related = ["resident"]
    fields = ["resident", "phone_masked", "phone", "is_primary"]
    readonly_fields = ["phone_masked"]
    autocomplete_fields = ["resident"]
    search_fields = ["resident__name"]

