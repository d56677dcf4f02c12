"""Summary tables of the supervisor's dashboard.

Written only by services.summary_refresh (a beat job: one transaction, set-based DELETE +
INSERT ... SELECT per table), read by selectors. At a million popups and a million appeals the
page reads these few thousand rows instead of grouping the base tables on every request.
Rows are per district (copied in, no join at read time, no database constraint: rebuilt from the
registry on every refresh); per community they would be nearly as many as the popups. A chosen
community's figures, trends and times are read live from its own rows instead (indexed, small).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from communities.models import Community, District
from healthkit import clock


def _district() -> models.ForeignKey:
    return models.ForeignKey(District, on_delete=models.DO_NOTHING, db_constraint=False, null=True,
                             related_name="+", verbose_name=_("district"))


def _community() -> models.ForeignKey:
    return models.ForeignKey(Community, on_delete=models.DO_NOTHING, db_constraint=False, null=True,
                             related_name="+", verbose_name=_("community"))


class OpenPopupByCommunity(models.Model):
    """Open popups per community and type: the 'by community' chart of one district."""

    popup_type = models.PositiveSmallIntegerField(_("popup type"))
    district = _district()
    community = _community()
    n = models.PositiveIntegerField(_("count"))

    class Meta:
        verbose_name = _("open popups per community (summary)")
        verbose_name_plural = _("open popups per community (summary)")
        indexes = [models.Index(fields=["district"], name="oversight_bycommunity_idx")]

    def __str__(self) -> str:
        return f"{self.community_id} {self.popup_type} {self.n}"


class SummaryRefresh(models.Model):
    """One refresh of the summary tables: the page says 'figures as of'."""

    as_of = models.DateTimeField(_("figures as of"))
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)

    class Meta:
        ordering = ["-as_of"]
        verbose_name = _("dashboard refresh")
        verbose_name_plural = _("dashboard refreshes")

    def __str__(self) -> str:
        return f"{clock.local_text(self.as_of, '%Y-%m-%d %H:%M:%S')}"


class OpenPopupFigure(models.Model):
    """Open popups (active or under review) by type, state, source and place."""

    popup_type = models.PositiveSmallIntegerField(_("popup type"))
    state = models.CharField(_("state"), max_length=14)
    source = models.CharField(_("source"), max_length=10)
    district = _district()
    n = models.PositiveIntegerField(_("count"))

    class Meta:
        verbose_name = _("open popups (summary)")
        verbose_name_plural = _("open popups (summary)")

    def __str__(self) -> str:
        return f"{self.popup_type} {self.state} {self.n}"


class OpenAppealFigure(models.Model):
    """Open appeals by stage, category, channel and place, with the counts that need a person."""

    status = models.CharField(_("status"), max_length=16)
    category = models.CharField(_("category"), max_length=20)
    channel = models.CharField(_("channel"), max_length=8)
    popup_type = models.PositiveSmallIntegerField(_("popup type"), null=True)
    district = _district()
    n = models.PositiveIntegerField(_("count"))
    breached = models.PositiveIntegerField(_("past SLA"), default=0)
    escalated = models.PositiveIntegerField(_("escalated"), default=0)
    repeated = models.PositiveIntegerField(_("appealed again"), default=0)
    repeats = models.PositiveIntegerField(_("repeats folded in"), default=0)
    stranded_long = models.PositiveIntegerField(_("stranded over a month"), default=0)

    class Meta:
        verbose_name = _("open appeals (summary)")
        verbose_name_plural = _("open appeals (summary)")

    def __str__(self) -> str:
        return f"{self.status} {self.category} {self.n}"


class OpenTaskFigure(models.Model):
    """Open clearance tasks by state, origin and place; overdue = past their SLA."""

    state = models.CharField(_("state"), max_length=16)
    origin = models.CharField(_("origin"), max_length=16)
    popup_type = models.PositiveSmallIntegerField(_("popup type"), null=True)
    district = _district()
    n = models.PositiveIntegerField(_("count"))
    overdue = models.PositiveIntegerField(_("overdue"), default=0)

    class Meta:
        verbose_name = _("open clearance tasks (summary)")
        verbose_name_plural = _("open clearance tasks (summary)")

    def __str__(self) -> str:
        return f"{self.state} {self.origin} {self.n}"


class DeliveryFigure(models.Model):
    """SMS not delivered and downstream deliveries failing (the resident's place when known)."""

    class Metric(models.TextChoices):
        SMS_UNDELIVERED = "sms_undelivered", _("SMS not delivered")
        SMS_DEAD = "sms_dead", _("SMS given up")
        OUTBOX_FAILED = "outbox_failed", _("Downstream deliveries failing")
        OUTBOX_DEAD = "outbox_dead", _("Downstream deliveries given up")
        # A failing batch once per district it reaches; the city's figure counts it once (above).
        OUTBOX_BATCH_FAILED = "outbox_batch_failed", _("Downstream batches failing, in this district")
        OUTBOX_BATCH_DEAD = "outbox_batch_dead", _("Downstream batches given up, in this district")

    metric = models.CharField(_("figure"), max_length=20, choices=Metric.choices)
    district = _district()
    n = models.PositiveIntegerField(_("count"))

    class Meta:
        verbose_name = _("deliveries (summary)")
        verbose_name_plural = _("deliveries (summary)")

    def __str__(self) -> str:
        return f"{self.metric} {self.n}"


class TrendPoint(models.Model):
    """Counts per city-local day (all history) and per hour (the last 3 days), per district: per
    community they would be as many rows as the popups themselves (the community's own list is a
    cheap indexed read instead)."""

    class Metric(models.TextChoices):
        POPUPS_RAISED = "popups_raised", _("Popups raised")
        LIFTED_AUTO = "lifted_auto", _("Popups lifted automatically")
        LIFTED_PERSON = "lifted_person", _("Popups lifted by a person")
        APPEALS_FILED = "appeals_filed", _("Appeals filed")
        APPEALS_CLOSED = "appeals_closed", _("Appeals closed")

    class Grain(models.TextChoices):
        DAY = "day", _("Day")
        HOUR = "hour", _("Hour")

    metric = models.CharField(_("figure"), max_length=16, choices=Metric.choices)
    grain = models.CharField(_("grain"), max_length=4, choices=Grain.choices)
    bucket = models.DateTimeField(_("from"))
    popup_type = models.PositiveSmallIntegerField(_("popup type"), null=True)
    district = _district()
    n = models.PositiveIntegerField(_("count"))

    class Meta:
        verbose_name = _("trend point")
        verbose_name_plural = _("trend points")
        indexes = [models.Index(fields=["grain", "bucket"], name="oversight_trend_idx")]

    def __str__(self) -> str:
        return f"{self.metric} {clock.local_text(self.bucket, '%Y-%m-%d %H:%M')} {self.n}"


class DurationBin(models.Model):
    """How long things took, as a histogram per end day: percentiles of any filter are read
    from the merged bins (bins a quarter power of two wide: within ±10 % of the exact value).
    Per district, like the trends."""

    class Measure(models.TextChoices):
        APPEAL_DECISION = "appeal_decision", _("Appeal filed → decided")
        POPUP_LIFT = "popup_lift", _("Popup raised → lifted")
        RECORD_LIFT = "record_lift", _("Clearing record on file → popup lifted")

    measure = models.CharField(_("measure"), max_length=16, choices=Measure.choices)
    # popup source (engine, upstream, ...) or the appeal's category
    key = models.CharField(_("source or category"), max_length=20, blank=True)
    by_person = models.BooleanField(_("by a person"), null=True)
    popup_type = models.PositiveSmallIntegerField(_("popup type"), null=True)
    district = _district()
    day = models.DateField(_("day"))
    bin = models.PositiveSmallIntegerField(_("bin"))
    n = models.PositiveIntegerField(_("count"))

    class Meta:
        verbose_name = _("duration bin")
        verbose_name_plural = _("duration bins")
        indexes = [models.Index(fields=["day"], name="oversight_duration_day_idx")]

    def __str__(self) -> str:
        return f"{self.measure} {self.day} bin {self.bin}: {self.n}"
