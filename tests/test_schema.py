"""faq/faq.schema.json and faq/ui.schema.json (editor help in VS Code) agree with what `check` accepts:
every shipped file validates, and broken samples that `check` rejects for a structural reason fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA, FAQ_DIR
from jsonschema import Draft7Validator, FormatChecker

from bot.faq import REQUIRED_UI, SPECIAL_FILES

SECTION_FILES = sorted(p for p in FAQ_DIR.glob("*.yaml") if p.name not in SPECIAL_FILES and not p.name.startswith("_"))
BROKEN = DATA / "broken"


class Yaml12Loader(yaml.SafeLoader):
    """YAML as the editor's language server reads it (YAML 1.2): `2026-11-24` stays a string."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=Yaml12Loader)  # a SafeLoader subclass


def validator(name: str) -> Draft7Validator:
    schema = json.loads((FAQ_DIR / name).read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=FormatChecker())


def errors(name: str, data: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(name).iter_errors(data)]


def test_there_are_section_files() -> None:
    assert len(SECTION_FILES) >= 4


@pytest.mark.parametrize("path", SECTION_FILES, ids=lambda p: p.name)
def test_every_shipped_section_file_validates(path: Path) -> None:
    assert errors("faq.schema.json", load(path)) == []


def test_ui_texts_validate_and_the_schema_requires_what_check_requires() -> None:
    assert errors("ui.schema.json", load(FAQ_DIR / "ui.yaml")) == []
    schema = json.loads((FAQ_DIR / "ui.schema.json").read_text(encoding="utf-8"))
    assert schema["required"] == list(REQUIRED_UI)
    ui = load(FAQ_DIR / "ui.yaml")
    del ui["greeting"]
    ui["fallback"].pop("kk")
    assert len(errors("ui.schema.json", ui)) == 2


def test_the_valid_sample_validates() -> None:
    assert errors("faq.schema.json", load(BROKEN / "valid" / "asylum.yaml")) == []


@pytest.mark.parametrize(
    ("sample", "where"),
    [
        ("title-too-long", "title"),
        ("missing-language", "'kk' is a required property"),
        ("missing-sources", "'sources' is a required property"),
        ("bad-source-url", "sources"),
        ("empty-questions", "questions"),
        ("impossible-date", "is not a 'date'"),
        ("two-problems", "title"),
        ("long-id", "is too long"),
    ],
)
def test_broken_samples_fail_the_schema(sample: str, where: str) -> None:
    found = errors("faq.schema.json", load(BROKEN / sample / "asylum.yaml"))
    assert found, f"{sample} passed the schema"
    assert any(where in e for e in found), found


def test_check_stays_the_authority() -> None:
    """What only `check` can see (ids elsewhere, placeholders, length after filling) passes the schema."""
    for sample in ("unknown-related", "unknown-placeholder", "duplicate-id", "answer-too-long"):
        assert errors("faq.schema.json", load(BROKEN / sample / "asylum.yaml")) == [], sample


def test_schema_rejects_what_the_loader_rejects() -> None:
    data = load(SECTION_FILES[0])
    entry = data["entries"][0]
    entry["Id"] = entry.pop("id")  # unknown field, and the id is missing
    entry["urgent"] = "yes please"
    entry["ru"]["answer"] = "   "
    entry["en"]["colour"] = "blue"
    data["entries"][1]["id"] = "Not_Kebab"
    found = errors("faq.schema.json", data)
    for fragment in ("'id' is a required property", "'Id' was unexpected", "urgent", "answer", "'colour'", "Not_Kebab"):
        assert any(fragment in e for e in found), (fragment, found)


def test_ui_checked_marks_validate_in_both_forms_and_bad_ones_fail() -> None:
    ui = load(FAQ_DIR / "ui.yaml")
    assert ui["checked"] == {"ru": "draft", "kk": "draft", "en": "draft"}
    ui["checked"] = "Aigerim, 2026-11-20"  # one mark for every language
    ui["greeting"]["checked"] = {"kk": "draft"}  # a text's own mark
    ui["menu_title"]["checked"] = "draft"
    assert errors("ui.schema.json", ui) == []
    ui["checked"] = {"kz": "draft"}
    ui["greeting"]["checked"] = ["draft"]
    ui["menu_title"]["kz"] = "Тақырып"
    found = errors("ui.schema.json", ui)
    assert len(found) == 3, found
