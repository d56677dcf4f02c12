"""The console queue's filters (django-filter). Personal-data searches (exact ID, phone) are not
here: they are POSTed and go through the keyed hash (see views_console.QueueView)."""

import datetime as dt

import django_filters
from django import forms
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.html import conditional_escape, escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from appeals.models import Appeal
from appeals.selectors import sla_soon_cutoff
from communities.models import Community, District, User
from healthkit import clock
from healthkit.filtering import AnyYesNoSelect, YesNoField
from healthkit.inputs import DateFormField
from healthkit.models import PopupType

# "Long-stranded": outside the city for more than this many days (the relief of Nov 2022).
STRANDED_DAYS = 30


def _attrs(attrs: dict) -> str:
    """As django/forms/widgets/attrs.html: in order, True as a bare name, False left out."""
    return "".join(f" {escape(key)}" if value is True else f' {escape(key)}="{escape(value)}"'
                   for key, value in attrs.items() if value is not False)


class _PlainSelectMixin:
    """Django's own <select> markup (same context: selected option, attributes, groups), written
    in Python: the template engine's include per <option> was most of the cost of the queue
    page's filter form (some 80 options rendered on every page)."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        parts = [f'<select name="{escape(widget["name"])}"{_attrs(widget["attrs"])}>']
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                parts.append(format_html('<optgroup label="{}">', group_name))
            parts += [f'<option value="{escape(option["value"])}"{_attrs(option["attrs"])}>'
                      f'{conditional_escape(option["label"])}</option>' for option in options]
            if group_name:
                parts.append("</optgroup>")
        parts.append("</select>")
        return mark_safe("\n".join(parts))  # noqa: S308 - every value above is escaped


class _PlainInputMixin:
    """Django's <input> markup (django/forms/widgets/input.html, same context) written in Python,
    for the same reason as _PlainSelectMixin: a template include per field of the filter form."""

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        shown = "" if widget["value"] is None else f' value="{escape(widget["value"])}"'
        return mark_safe(  # noqa: S308 - every value is escaped
            f'<input type="{escape(widget["type"])}" name="{escape(widget["name"])}"{shown}{_attrs(widget["attrs"])}>')


def cached_options(key: str, queryset: QuerySet, timeout: int) -> list[tuple[int, str]]:
    """A drop-down's (pk, label) options from the cache, read from `queryset` when missing: the
    lists that change rarely (districts, staff), so a console page spends no query on them."""
    options = cache.get(key)
    if options is None:
        options = [(obj.pk, str(obj)) for obj in queryset]
        cache.set(key, options, timeout)
    return options


def plain_label(context: dict) -> SafeString:
    """A field's <label> as django/forms/label.html writes it from the context BoundField.label_tag
    gives, without the template engine (two templates a field, on pages whose forms render on
    every request)."""
    label = conditional_escape(context["label"])
    if not context["use_tag"]:
        return mark_safe(label)  # noqa: S308 - escaped above
    tag = escape(context["tag"])
    return mark_safe(f"<{tag}{_attrs(context['attrs'] or {})}>{label}</{tag}>")  # noqa: S308 - every value escaped


class PlainTextInput(_PlainInputMixin, forms.TextInput):
    pass


class PlainDateInput(_PlainInputMixin, forms.DateInput):
    pass


class PlainSelect(_PlainSelectMixin, forms.Select):
    pass


class PlainNullBooleanSelect(_PlainSelectMixin, AnyYesNoSelect):
    pass


class YesNoFilter(django_filters.BooleanFilter):
    """Any, yes or no; a value that is none of them is a form error (healthkit.filtering.YesNoField)."""

    field_class = YesNoField


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight opening `day` in the current time zone (what the `__date` lookup compares in)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _in_communities(ids: list[int]) -> Q:
    """Appeals naming or routed to one of these communities. The ids are written into the query,
    not a subquery: each side is then an index condition the planner can count (a join through
    street to district, ORed, is a filter over every row; a subquery's ids it cannot count, and it
    reads the queue hoping to meet them early)."""
    return Q(community__in=ids) | Q(routed_community__in=ids)


class DayFilter(django_filters.DateFilter):
    """A day in the input boundary's year window: the day after 9999-12-31 does not exist."""

    field_class = DateFormField


class AppealFilter(django_filters.FilterSet):
    QUEUES = (
        ("open", _("All open")),
        ("new", _("New")),
        ("mine", _("Mine")),
        ("emergency", _("Emergencies")),
        ("sla_soon", _("SLA due within an hour")),
        ("breached", _("SLA breached")),
        ("waiting", _("Waiting for the resident")),
        ("routed", _("With the community")),
        ("closed", _("Closed")),
        ("all", _("Everything")),
    )

    queue = django_filters.ChoiceFilter(label=_("Queue"), choices=QUEUES, method="filter_queue", empty_label=None,
                                        widget=PlainSelect)
    reference = django_filters.CharFilter(label=_("Reference"), method="filter_reference", widget=PlainTextInput,
                                          max_length=20)
    category = django_filters.ChoiceFilter(label=_("Category"), choices=Appeal.Category.choices, widget=PlainSelect)
    priority = django_filters.ChoiceFilter(label=_("Priority"), choices=Appeal.Priority.choices, widget=PlainSelect)
    channel = django_filters.ChoiceFilter(label=_("Channel"), choices=Appeal.Channel.choices, widget=PlainSelect)
    popup_type = django_filters.ChoiceFilter(label=_("Popup type"), choices=PopupType.choices,
                                             field_name="popup_type_claimed", widget=PlainSelect)
    # Choices from the cache (see __init__): checking a district costs the page no query.
    district = django_filters.ChoiceFilter(label=_("District"), choices=(), method="filter_district",
                                           widget=PlainSelect)
    community = django_filters.CharFilter(label=_("Community (code or name)"), method="filter_community",
                                          widget=PlainTextInput, max_length=64)
    assigned_to = django_filters.ModelChoiceFilter(
        label=_("Assigned to"),
        queryset=User.objects.filter(role__in=[User.Role.OPERATOR, User.Role.SUPERVISOR], is_active=True),
        widget=PlainSelect)
    filed_after = DayFilter(label=_("Filed from"), field_name="created_at", method="filter_day_from",
                                             widget=PlainDateInput)
    filed_before = DayFilter(label=_("Filed until"), field_name="created_at", method="filter_day_until",
                                             widget=PlainDateInput)
    # The supervisor dashboard's drill-downs land here with these.
    status = django_filters.ChoiceFilter(label=_("Status"), choices=Appeal.Status.choices, method="filter_status",
                                         widget=PlainSelect)
    escalated = YesNoFilter(label=_("Escalated"), field_name="escalated_at", lookup_expr="isnull",
                                             exclude=True, widget=PlainNullBooleanSelect)
    repeated = YesNoFilter(label=_("Appealed again"), method="filter_repeated",
                                            widget=PlainNullBooleanSelect)
    stranded = YesNoFilter(label=_("Stranded outside over a month"), method="filter_stranded",
                                            widget=PlainNullBooleanSelect)
    closed_after = DayFilter(label=_("Closed from"), field_name="closed_at", method="filter_day_from",
                                             widget=PlainDateInput)
    closed_before = DayFilter(label=_("Closed until"), field_name="closed_at", method="filter_day_until",
                                             widget=PlainDateInput)

    class Meta:
        model = Appeal
        fields: list[str] = []

    # The district and staff drop-downs change rarely: their options (and each district's
    # communities) come from the cache, so the queue page spends its queries on the appeals. A
    # district is checked against its cached options; a staff member still against the database
    # by the form field's queryset.
    CHOICES_TIMEOUT = 120

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.form.fields["district"].choices = [(str(pk), label) for pk, label in self.district_options()]
        staff = self.form.fields["assigned_to"]
        staff.widget.choices = [("", staff.empty_label or "---------"), *cached_options(
            "appeals:queue-choices:assigned_to", staff.queryset, self.CHOICES_TIMEOUT)]

    @classmethod
    def district_options(cls) -> list[tuple[int, str]]:
        """The districts a `district` filter takes, (id, name), from the cache (the API documents them)."""
        return cached_options("appeals:queue-choices:district", District.objects.all(), cls.CHOICES_TIMEOUT)

    def filter_queue(self, qs, name, value):
        open_q = Q(status__in=Appeal.OPEN_STATUSES)
        now = clock.now()
        return {
            "open": lambda: qs.filter(open_q),
            "new": lambda: qs.filter(status=Appeal.Status.NEW),
            "mine": lambda: qs.filter(open_q, assigned_to=self.user),
            "emergency": lambda: qs.filter(open_q, priority=Appeal.Priority.EMERGENCY),
            "sla_soon": lambda: qs.filter(open_q, sla_due_at__gte=now, sla_due_at__lt=sla_soon_cutoff()),
            "breached": lambda: qs.filter(open_q, sla_due_at__lt=now),
            "waiting": lambda: qs.filter(status=Appeal.Status.WAITING_RESIDENT),
            "routed": lambda: qs.filter(status=Appeal.Status.ROUTED),
            "closed": lambda: qs.filter(status=Appeal.Status.CLOSED),
            "all": lambda: qs,
        }.get(value, lambda: qs.filter(open_q))()

    # A day as a range of the column itself (`__date` would wrap it in a time-zone conversion no
    # index holds, and read every appeal of the queue).
    def filter_day_from(self, qs, name, value):
        return qs.filter(**{f"{name}__gte": _day_start(value)})

    def filter_day_until(self, qs, name, value):
        return qs.filter(**{f"{name}__lt": _day_start(value + dt.timedelta(days=1))})

    # The statuses each queue holds: a status filter outside its queue matches nothing, said without
    # asking the database (whose estimate for two contradicting status conditions is most of the
    # queue, so it would read all of it looking for them).
    QUEUE_STATUSES = {"new": {Appeal.Status.NEW}, "waiting": {Appeal.Status.WAITING_RESIDENT},
                      "routed": {Appeal.Status.ROUTED}, "closed": {Appeal.Status.CLOSED},
                      "all": set(Appeal.Status.values)}

    def filter_status(self, qs, name, value):
        queue = self.form.cleaned_data.get("queue") or "open"
        if value not in self.QUEUE_STATUSES.get(queue, set(Appeal.OPEN_STATUSES)):
            return qs.none()
        return qs.filter(status=value)

    def filter_repeated(self, qs, name, value):
        return qs.filter(repeat_count__gt=0) if value else qs.filter(repeat_count=0)

    def filter_stranded(self, qs, name, value):
        since = clock.today() - dt.timedelta(days=STRANDED_DAYS)
        q = Q(currently_outside_city=True, outside_since__lte=since)
        return qs.filter(q) if value else qs.exclude(q)

    def filter_reference(self, qs, name, value):
        return qs.filter(reference=value.strip().upper()) if value.strip() else qs

    def filter_district(self, qs, name, value):
        key = f"appeals:queue-district-communities:{value}"
        ids = cache.get(key)
        if ids is None:
            ids = list(Community.objects.filter(street__district=value).order_by("pk").values_list("pk", flat=True))
            cache.set(key, ids, self.CHOICES_TIMEOUT)
        return qs.filter(_in_communities(ids))

    def filter_community(self, qs, name, value):
        value = value.strip()
        if not value:
            return qs
        # Thousands of communities: matched by code or name (one small query), then the ids.
        return qs.filter(_in_communities(list(
            Community.objects.filter(Q(code=value) | Q(name__icontains=value)).order_by("pk")
            .values_list("pk", flat=True)[:50])))
