"""The project's admin site: every changelist bounded, whatever the size of its table.

Django's changelist is written for small tables: it counts every matching row (twice when
filtered, unless show_full_result_count is off), pages with OFFSET to any depth, sorts on any
column, lists the date hierarchy's years, months or days with SELECT DISTINCT over every row, and
follows only non-null foreign keys with select_related (one query per row for each nullable one
shown). At a million popups, results or audit rows each of these took seconds (docs/scale.md,
*Every page at a million rows*). `AdminSite.register` mixes `BoundedListMixin` into every admin
registered here, the project's and third-party apps' alike (django-otp, axes, authtoken), so no
admin can leave the bounds out:

- the count stops at `LIST_COUNT_CAP` rows (one LIMITed count, never a second full one); deeper
  pages are not offered, and a deeper ?p= shows the last page offered;
- on a table the planner estimates above `BIG_TABLE_ROWS`, only columns an index leads that are
  unique or times (the primary key too) sort: Django adds the key to every sort, and a shared
  value (a state) would sort its whole group by the key;
- the date hierarchy's choices are every period between the first and the last date (two index
  reads), not a DISTINCT over the rows (templates/admin/change_list.html, healthkit.templatetags);
- a big table's list is in the order of its own ordering only where an index gives that order
  (else newest first, by key), and offers no facet counts;
- every foreign key shown as a column is joined, nullable ones too, with what its `__str__`
  reads (a model's `str_select_related`), and so are the options of a form's choice fields;
- on a big table a search runs only where an index serves every field searched: an exact
  text match or a prefix in collation "C" on a column an index leads, or a related small table's
  column reached through an indexed foreign key (`search_is_indexed`); any other search (Django's
  default `icontains` reads every row) is refused with a message, before it runs. An admin whose
  own get_search_results is indexed says so with `indexed_search = True`;
- a delete page first looks for rows that protect the object (one LIMITed count per protecting
  foreign key, on its index) and, where there are any, names them and offers no delete, before
  Django's collector reads every related row to list them (a community's delete page read its
  4,415 residents, 1,300 appeals and more: 3.1-3.6 s);
- a bulk action ("select all" acts on every matching row, not the 10,000 listed) first says how
  many rows it will change and changes at most `BULK_ACTION_CAP` of them in one statement when
  confirmed (`bulk_action_rows`); Django's "delete selected" refuses a selection larger than
  `BULK_DELETE_CAP` before collecting what each row protects.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import connections, models
from django.db.models import QuerySet, Subquery
from django.template.response import TemplateResponse
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from healthkit import inputs

# Rows a changelist counts and pages through (100 pages of 100): past it, filter or search.
LIST_COUNT_CAP = 10_000
# Above this many rows (the planner's estimate), a sort needs an index.
BIG_TABLE_ROWS = 100_000
# Rows one confirmed run of a bulk admin action changes (one statement); more: run it again.
BULK_ACTION_CAP = LIST_COUNT_CAP
# Rows Django's "delete selected" may be given: its confirmation lists every row and what each
# one protects, collected in Python.
BULK_DELETE_CAP = 1_000
_ESTIMATE_SECONDS = 300.0
_estimates: dict[tuple[str, str], tuple[float, float]] = {}


class CappedPaginator(Paginator):
    """Counts at most `cap` rows (a LIMITed count: its cost is bounded, not proportional to the
    table); `capped` says the list is longer. A page past the last offered is the last."""

    def __init__(self, object_list, per_page, orphans=0, allow_empty_first_page=True, cap: int = LIST_COUNT_CAP):
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.cap = cap
        self.capped = False

    @cached_property
    def count(self) -> int:
        found = self.object_list.order_by()[: self.cap + 1].count()
        self.capped = found > self.cap
        return min(found, self.cap)

    def validate_number(self, number):
        try:
            return super().validate_number(number)
        except EmptyPage:
            if int(number) > 1:
                return self.num_pages
            raise
        except PageNotAnInteger:
            raise


def estimated_rows(model: type[models.Model], using: str = "default") -> float:
    """The planner's row estimate for the model's table (pg_class.reltuples, kept by ANALYZE and
    autovacuum), cached for a few minutes: no COUNT(*) to decide whether a table is big."""
    key = (using, model._meta.db_table)
    now = time.monotonic()
    cached = _estimates.get(key)
    if cached and now - cached[1] < _ESTIMATE_SECONDS:
        return cached[0]
    connection = connections[using]
    if connection.vendor != "postgresql":
        rows = 0.0
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [model._meta.db_table])
            row = cursor.fetchone()
        rows = float(row[0]) if row and row[0] and row[0] > 0 else 0.0
    _estimates[key] = (rows, now)
    return rows


def indexed_fields(model: type[models.Model]) -> set[str]:
    """Fields a b-tree index leads (without a condition): those a sort can read in order."""
    opts = model._meta
    names = {f.name for f in opts.concrete_fields if f.primary_key or f.unique or f.db_index}
    for index in opts.indexes:
        if index.fields and getattr(index, "condition", None) is None:
            names.add(index.fields[0].lstrip("-"))
    for constraint in opts.constraints:
        if isinstance(constraint, models.UniqueConstraint) and constraint.fields and constraint.condition is None:
            names.add(constraint.fields[0])
    for together in opts.unique_together:
        names.add(together[0])
    return names


def _sorts_in_index_order(field: models.Field) -> bool:
    """Whether ORDER BY field, pk (Django adds the key for a stable order) reads an index on the
    field in order: a unique field, or a time (few rows share one). A foreign key sorts by the
    related model's ordering (a join); a state or a category is shared by so many rows that the
    key's tie-break sorts hundreds of thousands of them (1.3 s for the closed appeals)."""
    if field.primary_key or (field.unique and not field.is_relation):
        return True
    return isinstance(field, models.DateField) and not field.is_relation  # DateTimeField too


def _search_lookup(model: type[models.Model], spec: str) -> tuple[list[models.Field], str]:
    """The fields a search_fields entry walks and its lookup, as Django's get_search_results
    reads it (`^` istartswith, `=` iexact, `@` search, an explicit lookup, else icontains)."""
    prefixes = {"^": "istartswith", "=": "iexact", "@": "search"}
    lookup = prefixes.get(spec[:1], "")
    parts = (spec[1:] if lookup else spec).split("__")
    fields: list[models.Field] = []
    opts = model._meta
    for part in parts:
        try:
            field = opts.pk if part == "pk" else opts.get_field(part)
        except FieldDoesNotExist:
            lookup = lookup or part
            break
        fields.append(field)
        if field.is_relation and field.related_model is not None:
            opts = field.related_model._meta
    return fields, lookup or "icontains"


def search_is_indexed(model: type[models.Model], spec: str) -> bool:
    """Whether PostgreSQL can answer a search field's lookup on `model` from an index, without
    reading every row: an exact match on a text column an index leads, a prefix on one in
    collation "C" (`LIKE 'x%'` reads such an index in order), or a related table too small to
    matter reached through a foreign key an index leads. Django's case-insensitive lookups
    (UPPER(...)) and `exact` on a number (a cast to text) are not."""
    fields, lookup = _search_lookup(model, spec)
    current = model
    for field in fields:
        if estimated_rows(current) < BIG_TABLE_ROWS:
            return True
        if field.name not in indexed_fields(current):
            return False
        if field.is_relation:
            current = field.related_model
            continue
        text = isinstance(field, (models.CharField, models.TextField))
        return text and (lookup == "exact" or (lookup == "startswith" and getattr(field, "db_collation", None) == "C"))
    return estimated_rows(current) < BIG_TABLE_ROWS


# Rows counted per protecting relation on a delete page ("more than 1,000").
PROTECTED_COUNT_CAP = 1_000


def protecting_relations(model) -> list:
    """The foreign keys declared on_delete=PROTECT that point at `model`, hidden ones too (a key
    with related_name="+", e.g. a popup's policy, protects as much as any: Django's collector
    refuses the delete over it)."""
    return [f for f in model._meta.get_fields(include_hidden=True)
            if f.auto_created and not f.concrete and (f.one_to_many or f.one_to_one)
            and getattr(f, "on_delete", None) is models.PROTECT]


def protected_references(objs) -> list[str]:
    """What protects `objs` (a model's rows, or a queryset of them) from deletion, counted per
    foreign key declared on_delete=PROTECT (at most PROTECTED_COUNT_CAP each, through the
    key's index): ["Residents: 4,415", ...], empty when nothing protects them. A protected row
    blocks the delete whatever else cascades, so this answers before any collection."""
    model = objs.model if isinstance(objs, QuerySet) else (type(objs[0]) if objs else None)
    if model is None:
        return []
    protecting = protecting_relations(model)
    twice = {r.related_model for r in protecting if sum(o.related_model is r.related_model for o in protecting) > 1}
    found = []
    for relation in protecting:
        rows = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": objs})
        n = rows.order_by()[: PROTECTED_COUNT_CAP + 1].count()
        if not n:
            continue
        label = capfirst(relation.related_model._meta.verbose_name_plural)
        if relation.related_model in twice:  # e.g. appeals by the community named and the one routed to
            label = f"{label}, {relation.field.verbose_name}"
        found.append(_("%(what)s: more than %(n)s") % {"what": label, "n": f"{PROTECTED_COUNT_CAP:,}"}
                     if n > PROTECTED_COUNT_CAP else f"{label}: {n:,}")
    return found


class BoundedChangeList(ChangeList):
    """A changelist whose sort columns are those its admin offers (Django sorts on any column
    given in ?o=, offered or not), and whose page number is the page shown."""

    def get_results(self, request):
        super().get_results(request)
        # A page past the last offered showed the last one (CappedPaginator): say so in the links.
        self.page_num = min(self.page_num, self.paginator.num_pages)

    def get_ordering_field(self, field_name):
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)


def _join_labels(formfield, db_field):
    """A choice field's options read with what their labels read (a model's
    `str_select_related`): a user's community picker read each community's street and district
    one by one, two queries per community of the city."""
    paths = getattr(db_field.related_model, "str_select_related", ())
    if formfield is not None and paths and getattr(formfield, "queryset", None) is not None:
        formfield.queryset = formfield.queryset.select_related(*paths)
    return formfield


def bulk_action_rows(modeladmin: admin.ModelAdmin, request, eligible: QuerySet, *,
                     question: Callable[[int], str]) -> QuerySet | TemplateResponse | None:
    """The rows a bulk action may change, once the operator has confirmed the number.

    `eligible`: the selection narrowed to the rows the action applies to (with "select all",
    the changelist's whole filtered queryset, which may be millions of rows). The first call
    counts them, stopping at BULK_ACTION_CAP + 1, and returns the page that asks
    `question(n)` ("This will requeue 120 SMS."), saying when more match than one run takes;
    None (with a message) when none applies. The confirmed call returns a queryset of at most
    BULK_ACTION_CAP of those rows, by key, for the action's one set-based UPDATE."""
    cap = BULK_ACTION_CAP
    limited = eligible.model._default_manager.filter(pk__in=Subquery(eligible.order_by("pk").values("pk")[:cap]))
    if request.POST.get("confirm") == "yes":
        return limited
    found = eligible.order_by()[: cap + 1].count()
    if not found:
        modeladmin.message_user(request, _("None of the selected rows applies: nothing was changed."), messages.INFO)
        return None
    more = found > cap
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Are you sure?"),
        "opts": modeladmin.model._meta,
        "question": question(min(found, cap)),
        "more": _("More than %(cap)s rows match: this run changes the first %(cap)s; run the action again "
                  "for the rest.") % {"cap": f"{cap:,}"} if more else "",
        "action": request.POST.get("action", ""),
        "select_across": request.POST.get("select_across", "0"),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/bulk_action_confirmation.html", context)


class BoundedListMixin:
    """See the module docstring: bounded count and depth, indexed sorts on big tables, every
    foreign key column joined."""

    show_full_result_count = False  # the unfiltered count is a second full COUNT(*)
    list_count_cap = LIST_COUNT_CAP

    def get_changelist(self, request, **kwargs):
        return BoundedChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        return CappedPaginator(queryset, per_page, orphans, allow_empty_first_page, cap=self.list_count_cap)

    def get_sortable_by(self, request):
        sortable = super().get_sortable_by(request)
        if estimated_rows(self.model) < BIG_TABLE_ROWS:
            return sortable
        indexed = indexed_fields(self.model)
        allowed = []
        for name in sortable:
            if name == "pk":
                allowed.append(name)
                continue
            try:
                field = self.model._meta.get_field(name) if isinstance(name, str) else None
            except FieldDoesNotExist:  # a method or callable column: its sort is not known to be indexed
                continue
            if field is not None and field.name in indexed and _sorts_in_index_order(field):
                allowed.append(name)
        return allowed

    @property
    def show_facets(self):
        # Facet counts ("Show counts") are a COUNT over every matching row for each filter choice.
        if estimated_rows(self.model) >= BIG_TABLE_ROWS:
            return admin.ShowFacets.NEVER
        return admin.ShowFacets.ALLOW

    def get_ordering(self, request):
        """The list's own ordering, or the newest first (the key) on a big table where that
        ordering is not read from an index (a results list by sample time sorted 1 M rows)."""
        ordering = list(super().get_ordering(request) or self.model._meta.ordering or [])
        if not ordering or estimated_rows(self.model) < BIG_TABLE_ROWS:
            return ordering
        indexed = indexed_fields(self.model)
        for term in ordering:
            name = term.lstrip("-") if isinstance(term, str) else None
            try:
                field = self.model._meta.get_field(name) if name and name != "pk" else self.model._meta.pk
            except FieldDoesNotExist:
                return ["-pk"]
            if not (field.primary_key or (field.name in indexed and _sorts_in_index_order(field))):
                return ["-pk"]
        return ordering

    def get_search_results(self, request, queryset, search_term):
        # `indexed_search = True` on an admin: its own get_search_results reads an index (an exact
        # key). Read with getattr: an attribute here would come first in the mixed class's MRO.
        indexed = getattr(self, "indexed_search", False)
        if search_term.strip() and not indexed and estimated_rows(self.model) >= BIG_TABLE_ROWS:
            unindexed = [spec for spec in self.get_search_fields(request) if not search_is_indexed(self.model, str(spec))]
            if unindexed:
                self.message_user(request, _(
                    "This list is too long to search that way: the search would read every row, so "
                    "nothing was searched. Narrow the list with its filters, or use an exact look-up."),
                    messages.WARNING)
                return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    def get_deleted_objects(self, objs, request):
        """Django's collection of everything a delete takes, once nothing protects the rows
        (protected_references): where something does, the page names it and Django refuses the
        delete, without reading every related row first."""
        protected = protected_references(objs)
        if protected:
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            func, name, description = actions["delete_selected"]
            actions["delete_selected"] = (_bounded_delete(func), name, description)
        return actions

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return _join_labels(super().formfield_for_foreignkey(db_field, request, **kwargs), db_field)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return _join_labels(super().formfield_for_manytomany(db_field, request, **kwargs), db_field)

    def get_list_select_related(self, request):
        chosen = super().get_list_select_related(request)
        fks = []
        for name in self.get_list_display(request):
            if not isinstance(name, str):
                continue
            try:
                field = self.model._meta.get_field(name)
            except FieldDoesNotExist:  # a method or callable column
                continue
            if field.many_to_one or field.one_to_one:
                fks.append(name)
                # What the related object's __str__ reads (a community names its street and district).
                fks += [f"{name}__{path}" for path in getattr(field.related_model, "str_select_related", ())]
        if chosen is True or not fks:
            return chosen
        if chosen is False:
            # Django's own default follows the non-null keys only (select_related() without names).
            return fks
        return [*chosen, *(name for name in fks if name not in chosen)]


def _bounded_delete(delete_selected):
    """Django's "delete selected", refused before it collects anything when the selection is
    larger than BULK_DELETE_CAP (with "select all", every matching row: its confirmation page
    listed each one and everything it protects)."""

    def action(modeladmin, request, queryset):
        found = queryset.order_by()[: BULK_DELETE_CAP + 1].count()
        if found > BULK_DELETE_CAP:
            modeladmin.message_user(request, _(
                "More than %(cap)s rows are selected: nothing was deleted. Narrow the list with its "
                "filters or search and delete at most %(cap)s at a time.") % {"cap": f"{BULK_DELETE_CAP:,}"},
                messages.ERROR)
            return None
        return delete_selected(modeladmin, request, queryset)

    action.__name__ = "delete_selected"
    for attr in ("allowed_permissions", "short_description"):
        if hasattr(delete_selected, attr):
            setattr(action, attr, getattr(delete_selected, attr))
    return action


class PlausibleDatesMixin:
    """Every date and date-time an admin form edits lies in the input boundary's year window
    (healthkit.inputs.year_window), as on every console form: a policy version from year 1 or
    until 9999 is a typing error, and a day or an offset added to it overflows."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and isinstance(db_field, models.DateField):  # DateTimeField included
            field.validators = [*field.validators, inputs.validate_year_window]
        return field


class AdminSite(admin.AdminSite):
    """The default admin site, every registered admin bounded (BoundedListMixin) and its dates in
    the input window (PlausibleDatesMixin)."""

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        mixins = tuple(mixin for mixin in (PlausibleDatesMixin, BoundedListMixin) if not issubclass(admin_class, mixin))
        if mixins:
            admin_class = type(admin_class.__name__, (*mixins, admin_class),
                               {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__})
        return super().register(model_or_iterable, admin_class, **options)

