"""Safe YAML reading that remembers line numbers, so every problem can be reported as `file:line`.

Staff edit these files by hand, and a hostile or broken file must never take the bot down: files
are size-capped, must be UTF-8, and YAML aliases (the "billion laughs" bomb) are refused outright,
since hand-written FAQ files have no use for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 2_000_000


class LineDict(dict[str, Any]):
    """A mapping from YAML that knows the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence from YAML that knows its line and the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]

    def line_at(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


@dataclass(frozen=True)
class YamlProblem(Exception):
    """A file that cannot be read as YAML at all."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class _Lines(yaml.constructor.SafeConstructor):
    """Builds LineDict / LineList and refuses keys that repeat or are not plain text."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be plain text (a list or block cannot be a key)", key_node.start_mark
                )
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key '{key}' appears twice in the same block (first on line {seen[key]})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        plain = super().construct_mapping(node, deep=True)
        result = LineDict({str(key): value for key, value in plain.items()})
        result.line = node.start_mark.line + 1
        result.key_lines = {str(k): v for k, v in seen.items()}
        return result

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> Any:
        items = super().construct_sequence(node, deep=True)
        result = LineList(items)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        return result


class _Loader(_Lines, yaml.SafeLoader):
    """The pure-Python loader: slow, but it reports every problem at its line, aliases included."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in these files", event.start_mark
            )
        return super().compose_node(parent, index)


class _AliasFound(Exception):
    pass


_HAS_LIBYAML = hasattr(yaml, "CSafeLoader")  # PyYAML's wheels ship it; a source build may not


class _FastLoader(_Lines, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's parser (about ten times faster); a file with an alias goes to _Loader for its line."""

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        seen: set[int] = set()
        stack = [node] if node is not None else []
        while stack:  # an alias is a node met twice; the walk stops there, so a bomb costs nothing
            current = stack.pop()
            if id(current) in seen:
                raise _AliasFound
            seen.add(id(current))
            if isinstance(current, yaml.MappingNode):
                stack.extend(part for pair in current.value for part in pair)
            elif isinstance(current, yaml.SequenceNode):
                stack.extend(current.value)
        return node


def _construct_timestamp(loader: Any, node: yaml.ScalarNode) -> Any:
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a real date (use YYYY-MM-DD)", node.start_mark
        ) from None


def _construct_map(loader: Any, node: yaml.MappingNode) -> Any:
    return loader.construct_mapping(node)


def _construct_seq(loader: Any, node: yaml.SequenceNode) -> Any:
    return loader.construct_sequence(node)


for _cls in (_Loader, _FastLoader):
    _cls.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
    _cls.add_constructor("tag:yaml.org,2002:map", _construct_map)
    _cls.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def parse_yaml(text: str, path: str) -> Any:
    """Parse YAML text; raise YamlProblem with the line of the first error. A good file is read by
    libyaml; anything it stumbles on is read again by the pure-Python loader, whose messages and
    lines are the ones staff see."""
    if _HAS_LIBYAML:
        try:
            return yaml.load(text, Loader=_FastLoader)
        except (yaml.YAMLError, _AliasFound, RecursionError):
            pass
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = exc.problem or str(exc)
        if exc.context and exc.problem:
            message = f"{exc.context}: {exc.problem}"
        raise YamlProblem(path, line, f"YAML syntax: {message}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(path, 1, f"YAML: {exc}") from None
    except RecursionError:
        raise YamlProblem(path, 1, "YAML nesting is too deep") from None


def read_yaml(path: Path, shown_as: str | None = None) -> Any:
    """Read one YAML file safely (size cap, UTF-8 only, no aliases)."""
    name = shown_as or str(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise YamlProblem(name, 1, f"cannot read the file: {exc.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise YamlProblem(name, 1, f"file is too large ({size:,} bytes; the limit is {MAX_FILE_BYTES:,})")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlProblem(name, line, "the file is not UTF-8 text: save it as UTF-8 in your editor") from None
    return parse_yaml(text, name)
