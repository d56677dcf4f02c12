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
  reads (a model's `str_select_related`), and so are the options of a form's choice fields.
"""

from __future__ import annotations

import time

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db import connections, models
from django.utils.functional import cached_property

# Rows a changelist counts and pages through (100 pages of 100): past it, filter or search.
LIST_COUNT_CAP = 10_000
# Above this many rows (the planner's estimate), a sort needs an index.
BIG_TABLE_ROWS = 100_000
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


class AdminSite(admin.AdminSite):
    """The default admin site, every registered admin bounded (BoundedListMixin)."""

    def register(self, model_or_iterable, admin_class=None, **options):
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, BoundedListMixin):
            admin_class = type(admin_class.__name__, (BoundedListMixin, admin_class),
                               {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__})
        return super().register(model_or_iterable, admin_class, **options)

