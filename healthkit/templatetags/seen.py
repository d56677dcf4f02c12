"""`{% seen_field obj %}`: the hidden version field of a staff action form; `{% once_field %}`: the
one-time token of a creation form (healthkit.concurrency)."""

from django import template
from django.utils.html import format_html

from healthkit.concurrency import ONCE_FIELD, SEEN_FIELD, once_token, version_of

register = template.Library()


@register.simple_tag
def seen_field(obj) -> str:
    """The version of `obj` the page shows, posted back so the service can refuse a stale form."""
    return format_html('<input type="hidden" name="{}" value="{}">', SEEN_FIELD, version_of(obj))


@register.simple_tag
def once_field() -> str:
    """A fresh one-time token each time the form is rendered (a re-rendered form gets a new one)."""
    return format_html('<input type="hidden" name="{}" value="{}">', ONCE_FIELD, once_token())
