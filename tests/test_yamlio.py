"""bot.yamlio: libyaml reads good files fast, and what it reads is exactly what the line-reporting
pure-Python loader reads (values, LineDict/LineList types and line numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA, ROOT

from bot import yamlio
from bot.yamlio import YamlProblem, parse_yaml

FILES = sorted([*ROOT.glob("faq/*.yaml"), ROOT / "config.yaml", ROOT / "bot/data/lexicon.yaml", *DATA.glob("*.yaml")])


def _same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, yamlio.LineDict):
        assert (a.line, a.key_lines) == (b.line, b.key_lines)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, yamlio.LineList):
        assert (a.line, a.item_lines) == (b.line, b.item_lines)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        assert a == b


@pytest.mark.skipif(not yamlio._HAS_LIBYAML, reason="PyYAML built without libyaml")
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_libyaml_reads_every_shipped_file_exactly_like_the_python_loader(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    _same(yaml.load(text, Loader=yamlio._FastLoader), yaml.load(text, Loader=yamlio._Loader))


def test_an_alias_is_refused_at_its_own_line() -> None:
    text = "a: &x\n  - 1\n  - 2\nb: 3\nc: *x\n"
    with pytest.raises(YamlProblem) as caught:
        parse_yaml(text, "f.yaml")
    assert caught.value.line == 5
    assert "aliases" in caught.value.message


def test_an_alias_bomb_is_refused_quickly() -> None:
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]" for i in range(20)]
    with pytest.raises(YamlProblem, match="aliases"):
        parse_yaml("\n".join(lines), "bomb.yaml")


def test_a_syntax_error_keeps_the_python_loaders_message_and_line() -> None:
    with pytest.raises(YamlProblem) as caught:
        parse_yaml("a: 1\nb: c: d\n", "f.yaml")
    assert caught.value.line == 2
    assert "mapping values are not allowed here" in caught.value.message
