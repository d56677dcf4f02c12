"""Template filters for event lists (see healthkit.labels)."""

from django import template

from healthkit.labels import actor_name

register = template.Library()


@register.filter
def actor(event) -> str:
    """Who wrote the event: the label (a job code or the user name written with it), else the
    user; the label first, so a list of events does not fetch each user."""
    label = getattr(event, "actor_label", "") or ""
    if label:
        return actor_name(label)
    user = getattr(event, "actor", None)
    return user.get_username() if user is not None else ""
