"""The committed zh-hans catalogue is complete and its compiled .mo matches the .po.

A fresh machine may have no gettext tools, so the .mo is committed; this catches a .po edited
without recompiling, and strings left untranslated in the Chinese-first product.
"""

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

PO = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def _entries() -> list[dict[str, object]]:
    """Minimal .po reader: msgctxt/msgid/msgid_plural/msgstr blocks with continuation lines."""
    entries: list[dict[str, object]] = []
    for block in PO.read_text(encoding="utf-8").split("\n\n"):
        entry: dict[str, object] = {"fuzzy": False}
        key = None
        for line in block.splitlines():
            if line.startswith("#,") and "fuzzy" in line:
                entry["fuzzy"] = True
            if line.startswith("#"):
                continue
            match = re.match(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (".*")$', line)
            if match:
                key = match.group(1)
                entry[key] = ast.literal_eval(match.group(2))
            elif line.startswith('"') and key:
                entry[key] = str(entry[key]) + ast.literal_eval(line)
        if entry.get("msgid"):
            entries.append(entry)
    return entries


def test_catalogue_has_no_untranslated_or_fuzzy_entries():
    entries = _entries()
    assert len(entries) > 100
    missing = [e["msgid"] for e in entries if e["fuzzy"] or not (e.get("msgstr") or e.get("msgstr[0]"))]
    assert missing == []


@pytest.mark.parametrize("language", ["zh-hans"])
def test_compiled_catalogue_matches_the_po_file(language):
    plain = [e for e in _entries() if "msgctxt" not in e and "msgid_plural" not in e and e.get("msgstr")]
    with translation.override(language):
        stale = [e["msgid"] for e in plain if translation.gettext(e["msgid"]) != e["msgstr"]]
    assert stale == []


def test_words_with_several_meanings_are_translated_by_context():
    """"Open" tasks are not yet done, "Open" popups are not yet lifted; a person's name is 姓名,
    a place's 名称: one msgid each would force one Chinese word on every meaning."""
    from django.utils import translation
    from django.utils.translation import pgettext

    from communities.models import Community, Resident

    with translation.override("zh-hans"):
        assert pgettext("tasks still in progress", "Open") == "未办结"
        assert pgettext("popups not lifted", "Open") == "未解除"
        assert str(Resident._meta.get_field("name").verbose_name) == "姓名"
        assert str(Community._meta.get_field("name").verbose_name) == "名称"


def test_no_translated_text_is_written_inside_an_f_string():
    """xgettext (makemessages) cannot read a call inside an f-string's braces: its text never
    reaches the catalogue and stays English on the Chinese page (the queue's "breached" badge)."""
    gettext_names = {"_", "gettext", "gettext_lazy", "pgettext", "pgettext_lazy", "ngettext", "ngettext_lazy"}
    root = Path(settings.BASE_DIR)
    found = []
    for path in root.rglob("*.py"):
        if {".venv", "tests", "bench", "migrations", "node_modules"} & set(path.relative_to(root).parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                found += [f"{path.relative_to(root)}:{call.lineno}" for call in ast.walk(node)
                          if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                          and call.func.id in gettext_names and call.args and isinstance(call.args[0], ast.Constant)]
    assert found == []
