"""The admin's model names and column headers are translatable (gettext_lazy), so they show in
the reader's language: every model of the project's apps, every list column and filter."""

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.utils.functional import Promise


def _header(model, model_admin, name):
    try:
        return model._meta.get_field(name).verbose_name
    except FieldDoesNotExist:
        attr = getattr(model_admin, name, None) or getattr(model, name, None)
        if isinstance(attr, property):
            attr = attr.fget
        return getattr(attr, "short_description", None)


# The project's own apps (third-party apps such as axes or django-otp bring their own wording).
OWN_APPS = {"communities", "healthkit", "appeals", "clearance", "venues", "oversight"}


def test_every_admin_model_name_and_column_header_is_translatable():
    untranslated = []
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        if meta.app_label not in OWN_APPS:
            continue
        if not isinstance(meta.verbose_name, Promise) or not isinstance(meta.verbose_name_plural, Promise):
            untranslated.append(f"{meta.label} (model name)")
        for name in [*model_admin.list_display, *[f for f in model_admin.list_filter if isinstance(f, str)]]:
            if name in ("__str__", "pk", "id") or "__" in name:
                continue
            if not isinstance(_header(model, model_admin, name), Promise):
                untranslated.append(f"{meta.label}.{name}")
    assert not untranslated, untranslated
