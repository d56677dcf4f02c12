"""`{% seen_field obj %}`: the hidden version field of a staff action form (healthkit.concurrency)."""

from django import template
from django.utils.html import format_html

from healthkit.concurrency import SEEN_FIELD, version_of

register = template.Library()


@register.simple_tag
def seen_field(obj) -> str:
    """The version of `obj` the page shows, posted back so the service can refuse a stale form."""
    return format_html('<input type="hidden" name="{}" value="{}">', SEEN_FIELD, version_of(obj))
