"""Safe YAML reading that remembers line numbers, so every problem can be reported as `file:line`.

Staff edit these files by hand, and a hostile or broken file must never take the bot down: only
regular files are read (a folder, a pipe or a device named *.yaml is refused without ever blocking),
at most MAX_FILE_BYTES of them however large they claim or grow to be, they must be UTF-8, and YAML
aliases (the "billion laughs" bomb) are refused outright, since hand-written FAQ files have no use for
them. A syntax error is explained in plain words at the line that causes it.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import re
import stat
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import yaml

MAX_FILE_BYTES = 2_000_000

# The line breaks YAML counts (PyYAML and libyaml alike): a mark's line is a line of this split.
_BREAKS_RE = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")


class Span(NamedTuple):
    """Where a text value that runs over several lines sits in its file (1-based line numbers)."""

    first: int  # the line of its first character (the '|' or '>' of a block text)
    last: int  # the line of its last character
    style: str | None  # None plain, "'" or '"' quoted, '|' literal block, '>' folded block
    source: list[str]  # the file's lines

    def line_at(self, value: str, offset: int, length: int = 1) -> int:
        """The line of value[offset : offset + length], `value` being the text this span holds."""
        if self.style == "|":  # a literal block keeps its lines: the value's line k is the file's first+1+k
            return self.first + 1 + value.count("\n", 0, offset)
        needle = value[offset : offset + length]
        if needle.strip() and "\n" not in needle:  # folded lines: look the piece up in the file's lines
            before = value.count(needle, 0, offset)
            for number in range(self.first, min(self.last, len(self.source)) + 1):
                here = self.source[number - 1].count(needle)
                if before < here:
                    return number
                before -= here
        return self.first + (1 if self.style == ">" else 0)


_NO_SPANS: Mapping[Any, Span] = MappingProxyType({})


class LineDict(dict[str, Any]):
    """A mapping from YAML that knows the line of itself and of each key (1-based), and where each
    text value that runs over several lines sits."""

    line: int = 0
    key_lines: dict[str, int]
    spans: Mapping[str, Span] = _NO_SPANS
    escaped = True  # (a document's root) whether its text has a backslash escape: see control_characters

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

    def value_line(self, key: str, offset: int, length: int = 1) -> int:
        """The line of the character at `offset` in the text value of `key` (a block text's own line)."""
        span, value = self.spans.get(key), self.get(key)
        if span is None or not isinstance(value, str):
            return self.line_of(key)
        return span.line_at(value, offset, length)

    def folded(self, key: str) -> Span | None:
        """The span of a plain (unquoted) text that runs over several lines: YAML joined them into one."""
        span = self.spans.get(key)
        return span if span is not None and span.style is None else None


class LineList(list[Any]):
    """A sequence from YAML that knows its line and the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]
    spans: Mapping[int, Span] = _NO_SPANS
    escaped = True

    def line_at(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line

    def folded(self, index: int) -> Span | None:
        """The span of a plain (unquoted) item that runs over several lines: YAML joined them into one."""
        span = self.spans.get(index)
        return span if span is not None and span.style is None else None


@dataclass(frozen=True)
class YamlProblem(Exception):
    """A file that cannot be read as YAML at all."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _span(node: yaml.Node, source: list[str]) -> Span | None:
    """The span of a scalar that runs over several lines, else None."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    first = node.start_mark.line + 1
    last = node.end_mark.line + (1 if node.end_mark.column > 0 else 0)
    if last <= first:
        return None
    return Span(first, last, node.style or None, source)  # libyaml says '' for plain, PyYAML None


class _Lines(yaml.constructor.SafeConstructor):
    """Builds LineDict / LineList and refuses keys that repeat or are not plain text."""

    source_lines: list[str] = []  # noqa: RUF012  (set per document by parse_yaml; read-only here)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        spans: dict[str, Span] = {}
        for key_node, value_node in node.value:
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
            if value_node.end_mark.line != value_node.start_mark.line:
                span = _span(value_node, self.source_lines)
                if span is not None:
                    spans[str(key)] = span
        plain = super().construct_mapping(node, deep=True)
        result = LineDict({str(key): value for key, value in plain.items()})
        result.line = node.start_mark.line + 1
        result.key_lines = {str(k): v for k, v in seen.items()}
        if spans:
            result.spans = spans
        return result

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> Any:
        items = super().construct_sequence(node, deep=True)
        result = LineList(items)
        result.line = node.start_mark.line + 1
        result.item_lines = [child.start_mark.line + 1 for child in node.value]
        spans = {
            i: s
            for i, child in enumerate(node.value)
            if child.end_mark.line != child.start_mark.line and (s := _span(child, self.source_lines)) is not None
        }
        if spans:
            result.spans = spans
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


def _load(text: str, loader_class: Any, source: list[str]) -> Any:
    loader = loader_class(text)
    loader.source_lines = source
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    if isinstance(data, LineDict | LineList):
        data.escaped = "\\" in text  # YAML refuses control characters typed raw: only an escape brings one
    return data


def parse_yaml(text: str, path: str) -> Any:
    """Parse YAML text; raise YamlProblem with the line of the first error, in plain words. A good
    file is read by libyaml; anything it stumbles on is read again by the pure-Python loader, whose
    findings are the ones explained to staff."""
    source = _BREAKS_RE.split(text)
    if _HAS_LIBYAML:
        try:
            return _load(text, _FastLoader, source)
        except (yaml.YAMLError, _AliasFound, RecursionError):
            pass
    try:
        return _load(text, _Loader, source)
    except yaml.MarkedYAMLError as exc:
        try:
            line, message = explain_syntax_error(source, exc)
        except Exception:  # the explanation must never be what breaks `check`: PyYAML's own words then
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            message = f"YAML syntax: {exc.context + ': ' if exc.context else ''}{exc.problem or exc}"
        raise YamlProblem(path, line, message) from None
    except yaml.reader.ReaderError as exc:
        line = len(_BREAKS_RE.split(text[: exc.position])) if isinstance(exc.position, int) else 1
        raise YamlProblem(
            path,
            line,
            f"line {line} holds an invisible control character (U+{exc.character:04X}), which YAML does not "
            "allow: delete it (retyping the line removes it)",
        ) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(path, 1, f"YAML: {exc}") from None
    except RecursionError:
        raise YamlProblem(path, 1, "YAML nesting is too deep") from None


# ---------------------------------------------------------------- syntax errors in plain words

_KEY_RE = re.compile(r"^(\s*(?:-\s+)*)([^\s#'\"{\[-][^#]*?|-[^\s#][^#]*?)\s*:(?=\s|$)")
_BLOCK_HEADER_RE = re.compile(r":\s*[|>][-+0-9]*\s*(?:#.*)?$")
_ITEM_RE = re.compile(r"^(\s*)((?:-\s+)*)")
_SPACES = "use spaces, not tabs"
_EventLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
REPAIR_SECONDS = 1.5  # how long `explain_syntax_error` may spend trying repairs to find the culprit


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _content_indent(line: str) -> int:
    """Where the content of a line starts, past its '- ' markers ('  - id: a' → 4)."""
    m = _ITEM_RE.match(line)
    return m.end() if m else 0


def _content_line(lines: list[str], number: int, step: int) -> int:
    """The nearest line from `number` on in direction `step` that holds more than a comment, or 0."""
    n = number + step
    while 1 <= n <= len(lines):
        text = lines[n - 1].strip()
        if text and not text.startswith("#"):
            return n
        n += step
    return 0


def _first_error_line(lines: list[str]) -> int | None:
    """The line of the first syntax error the fast parser finds, or None when the text parses."""
    try:
        for _ in yaml.parse("\n".join(lines), Loader=_EventLoader):
            pass
    except yaml.MarkedYAMLError as exc:
        return exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
    except yaml.YAMLError:
        return 1
    return None


def _loads(lines: list[str]) -> bool:
    """Whether the text reads as a whole, with this module's own rules (no key twice)."""
    try:
        _load("\n".join(lines), _FastLoader if _HAS_LIBYAML else _Loader, lines)
    except (yaml.YAMLError, _AliasFound, RecursionError):
        return False
    return True


def _spaces(n: int) -> str:
    return f"{n} space" if n == 1 else f"{n} spaces"


def _block_text_lines(lines: list[str]) -> list[bool]:
    """For each line (0-based), whether it is part of a '|' or '>' text (blank lines inside included)."""
    inside = [False] * len(lines)
    i = 0
    while i < len(lines):
        if _BLOCK_HEADER_RE.search(lines[i]) or re.match(r"^\s*-\s+[|>][-+0-9]*\s*(?:#.*)?$", lines[i]):
            header = _indent(lines[i])
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            width = _indent(lines[j]) if j < len(lines) else 0
            if width > header:
                j = i + 1
                while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) >= width):
                    inside[j] = True
                    j += 1
                i = j
                continue
        i += 1
    return inside


def _is_opener(line: str) -> bool:
    """'key:' with nothing after it (a block of settings or a list follows)."""
    m = _KEY_RE.match(line)
    return m is not None and not line[m.end() :].split(" #")[0].strip()


class _Layout:
    """The lines of a file with what the repair search needs to know about each."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.text = _block_text_lines(lines)
        # how far each kind of line ('id:', '- id:', 'kk:', '-'; ':' for any 'key:' that opens a block)
        # is indented across the file, and on which lines
        self.widths: dict[str, Counter[int]] = {}
        self.where: dict[str, list[int]] = {}
        for number, line in enumerate(lines, 1):
            sig = self.signature(number)
            if sig is None:
                continue
            for kind in (sig, ":") if _is_opener(line) else (sig,):
                self.widths.setdefault(kind, Counter())[_indent(line)] += 1
                self.where.setdefault(kind, []).append(number)

    def signature(self, number: int) -> str | None:
        """A line's kind for comparing indentation: its key with its list markers ('- id'), or '-'."""
        line = self.lines[number - 1]
        if self.text[number - 1] or not line.strip() or line.lstrip().startswith("#"):
            return None
        m = _KEY_RE.match(line)
        dashes = "-" * _ITEM_RE.match(line).group(2).count("-")  # type: ignore[union-attr]
        if m is not None:
            key = m.group(2).strip()
            return dashes + key if re.fullmatch(r"[\w-]+", key) else None  # a text line is no key
        return dashes or None

    def unfamiliar(self, number: int) -> list[tuple[int, int]]:
        """(width, a line of that width) for each indentation that lines of this kind have elsewhere in
        the file when this one's is found nowhere else (most usual first)."""
        sig = self.signature(number)
        if sig is None:
            return []
        here = self.indent(number)
        if self.widths[sig].total() == 1 and _is_opener(self.lines[number - 1]):
            openers = self.widths.get(":", Counter()).copy()
            openers[here] -= 1
            common = openers.most_common(1)
            if not common or common[0][1] < 0.8 * openers.total():
                return []
            sig = ":"  # a key met once ('greeting:') among keys that open blocks at one indentation (ui.yaml)
        widths = self.widths.get(sig, Counter())
        if widths[here] > 1:
            return []
        out = []
        for width, count in widths.most_common():
            if width != here and count > 0:
                same = [n for n in self.where[sig] if n != number and self.indent(n) == width]
                out.append((width, min(same, key=lambda n: abs(n - number))))
        return out

    def indent(self, number: int) -> int:
        return _indent(self.lines[number - 1])

    def near(self, number: int, step: int, structure: bool = False) -> int:
        """The nearest content line in direction `step` (with `structure`: outside '|' texts), or 0."""
        n = _content_line(self.lines, number, step)
        while structure and n and self.text[n - 1]:
            n = _content_line(self.lines, n, step)
        return n

    def edit(self, number: int, width: int) -> list[str]:
        edited = self.lines.copy()
        edited[number - 1] = " " * width + self.lines[number - 1].lstrip(" ")
        return edited

    def outlier(self, number: int) -> tuple[int, int] | None:
        """(width, reference line) when line `number` stands out from the lines around it."""
        here = self.indent(number)
        before, after = self.near(number, -1), self.near(number, +1)
        if before and after and self.indent(before) == self.indent(after) != here:
            return self.indent(before), before  # both neighbours agree, this one does not
        parent, sibling = self.near(number, -1, True), self.near(number, +1, True)
        opener = parent and sibling and _is_opener(self.lines[parent - 1]) and not self.text[number - 1]
        if opener and here <= self.indent(parent) < self.indent(sibling):
            return self.indent(sibling), sibling  # 'key:' left without its first child
        header = before and _BLOCK_HEADER_RE.search(self.lines[before - 1])
        if header and after and self.indent(before) < self.indent(after) < here:
            return self.indent(after), after  # the first line of a '|' text sets how far all of it is indented
        if self.text[number - 1]:
            return None  # the lines of a text are not keys, whatever they look like
        if parent and sibling and _is_opener(self.lines[parent - 1]) and before == parent and not header:
            width, n, run = self.indent(sibling), sibling, 0
            while n and self.indent(n) == width and run < 2:
                run, n = run + 1, self.near(n, +1, True)
            if run >= 2 and self.indent(parent) < width != here:
                return width, sibling  # a block's first line, indented unlike the lines that follow it
        childless = after and _is_opener(self.lines[number - 1]) and here >= self.indent(after) > 0
        if childless and (not self.lines[after - 1].lstrip().startswith("-") or here > self.indent(after)):
            n = after
            while n and self.indent(n) >= here:
                n = self.near(n, +1, True)
            if n and parent and self.indent(parent) < self.indent(n) < here:
                return self.indent(n), n  # 'key:' whose block is not indented under it
        return None

    def message(self, number: int, width: int, ref: int, same_kind: bool = False) -> str:
        here = self.indent(number)
        for near in (self.near(number, -1), self.near(number, +1)):
            if near and self.indent(near) == width and not self.text[near - 1]:
                ref = near  # the line next to it says it best
                break
        sig = self.signature(number)
        like = f", like the other '{sig}:' lines" if same_kind and sig and sig not in ("-", ":") else ""
        more = "more" if here > width else "less"
        return (
            f"line {number} is indented {more} than line {ref} ({_spaces(here)}, not {width}{like}): line them up; "
            f"{_SPACES}"
        )


def _repairs(lines: list[str], at: int) -> Iterator[tuple[int, list[str], str]]:
    """Small edits that could undo the mistake behind an error found on line `at`, most telling first:
    (line, the edited lines, what to tell staff)."""
    layout = _Layout(lines)
    # a quote left open: YAML reads on to the next quote, so the error shows where that one is
    for quote in "\"'":
        n = at - 1
        while n >= 1 and quote not in lines[n - 1]:
            n -= 1
        text = lines[n - 1] if n >= 1 else ""
        if n >= 1 and text.count(quote) % 2 == 1 and _value_start(text) == quote:
            opened = text.index(quote, len(text) - len(text.lstrip(" -")))
            for edit in (text.rstrip() + quote, text[:opened] + text[opened + 1 :]):
                edited = lines.copy()
                edited[n - 1] = edit
                yield (
                    n,
                    edited,
                    (
                        f"line {n}: the quote ({quote}) opened on this line is never closed on it, so YAML reads on "
                        f"to the next quote, on line {at}: close it at the end of line {n}, or remove it"
                    ),
                )
    candidates: list[int] = []
    n = at
    while n and len(candidates) < 60:
        candidates.append(n)
        n = _content_line(lines, n, -1)
    for number in candidates[:2]:  # 'key value' without its ':'
        yield from _colon_repairs(layout, number)
    for number in candidates:  # a line indented unlike every other line of its kind ('kk:', '- id:')
        for width, ref in layout.unfamiliar(number):
            yield number, layout.edit(number, width), layout.message(number, width, ref, same_kind=True)
    for number in candidates:  # a line whose indentation stands out from the lines around it
        found = layout.outlier(number)
        if found is not None:
            yield number, layout.edit(number, found[0]), layout.message(number, *found)
    for number in candidates:  # then any line lined up with a neighbour
        text = lines[number - 1]
        here = layout.indent(number)
        own = layout.text[number - 1]
        options = []
        for ref in (layout.near(number, -1, not own), layout.near(number, +1, not own)):
            if ref:
                options.append((layout.indent(ref), ref))
        before = layout.near(number, -1, not own)
        if before:
            options.append((_content_indent(lines[before - 1]), before))
        above = layout.near(number, -1)
        sig = layout.signature(number)
        if not own and above and layout.text[above - 1] and (sig is None or layout.widths[sig].total() == 1):
            options.append((layout.indent(above), above))  # a line of the text above that slipped out of it
        tried = {here}
        if above and _BLOCK_HEADER_RE.search(lines[above - 1]):
            tried |= set(range(layout.indent(above) + 1))  # a text must stay under its 'key: |'
        for width, ref in options:
            if width not in tried:
                tried.add(width)
                yield number, layout.edit(number, width), layout.message(number, width, ref)
        yield from _colon_repairs(layout, number)


def _colon_repairs(layout: _Layout, number: int) -> Iterator[tuple[int, list[str], str]]:
    """'checked draft' → 'checked: draft'."""
    text = layout.lines[number - 1]
    marker = _ITEM_RE.match(text)
    rest = text[marker.end() :] if marker else text.lstrip(" ")
    word = rest.split(" ", 1)
    if layout.text[number - 1] or len(word) < 2 or not word[0] or _KEY_RE.match(text):
        return
    if word[0][0] not in "\"'{[|>#&*!%@`":
        edited = layout.lines.copy()
        edited[number - 1] = text[: len(text) - len(rest)] + f"{word[0]}: {word[1]}"
        yield number, edited, f"line {number}: a ':' is missing after '{word[0]}' (write '{word[0]}: …')"


def _find_culprit(lines: list[str], at: int) -> tuple[int, str] | None:
    """The line whose repair lets the parser get past line `at`, with what to do, or None."""
    base = _first_error_line(lines)
    if base is None:
        return None
    at = min(max(at, base), len(lines))
    deadline = time.monotonic() + REPAIR_SECONDS
    window = at + 40  # the parser only needs to get past the error: later lines are not read again
    for number, edited, message in _repairs(lines, at):
        if time.monotonic() > deadline:
            break
        found = _first_error_line(edited[:window])
        if found is None or found > at + 1:
            return number, message
    return None


def _value_start(line: str) -> str:
    """The first character of the value on a 'key: value' or '- value' line ('' when there is none)."""
    m = _KEY_RE.match(line)
    if m:
        return line[m.end() :].lstrip()[:1]
    item = _ITEM_RE.match(line)
    return line[item.end() :][:1] if item else ""


def _quote_advice(first: str, number: int) -> str | None:
    if first in "\"'" and first:
        return (
            f"line {number}: the text in quotes ends at the second {first}, but more follows it: put the quotes "
            "around the whole text; for a quote inside it write \\\" inside \"...\" (or '' inside '...')"
        )
    if first in "{[" and first:
        example = "{help_site}" if first == "{" else "[...]"
        return (
            f"line {number}: a text that starts with '{first}' must be in quotes (YAML reads '{first}' as the start "
            f'of a list or a block), e.g. "{example} …"'
        )
    return None


def _misaligned(lines: list[str], number: int) -> str:
    """Why line `number` does not fit where it stands, when no small repair says it better."""
    here = _indent(lines[number - 1])
    prev = _content_line(lines, number, -1)
    if prev and here > _indent(lines[prev - 1]):
        return f"line {number} is indented more than line {prev}: line it up with the line it belongs with; {_SPACES}"
    if prev:
        return (
            f"line {number} is indented by {_spaces(here)}, which lines up with no block above it (line {prev} has "
            f"{_indent(lines[prev - 1])}): line it up with the line it belongs with; {_SPACES}"
        )
    return f"line {number} does not line up with the lines above it: check its indentation; {_SPACES}"


def explain_syntax_error(lines: list[str], exc: yaml.MarkedYAMLError) -> tuple[int, str]:
    """(line, message) for a YAML syntax error: the line that causes it, and what to do, in plain words.

    PyYAML reports where its parser gave up, in parser terms ("mapping values are not allowed here"),
    often lines after the mistake; staff need the mistake's own line and the fix. A mistake in
    indentation, a missing ':' or an unclosed quote is found by trying the small edit that would
    undo it on the lines above the error, nearest first: the first edit that lets the parser get
    past the error names the culprit."""
    problem, context = exc.problem or "", exc.context or ""
    pm, cm = exc.problem_mark, exc.context_mark
    at = min(max(pm.line + 1 if pm is not None else 1, 1), len(lines))
    ctx = min(max(cm.line + 1 if cm is not None else at, 1), len(lines))
    text = lines[at - 1]

    if isinstance(exc, yaml.constructor.ConstructorError | yaml.composer.ComposerError):
        twice = re.search(r"appears twice in the same block \(first on line (\d+)\)", problem)
        if twice:  # often a line indented too far, which pulls the lines below it into the block above
            first = int(twice.group(1))
            layout = _Layout(lines)
            deadline = time.monotonic() + REPAIR_SECONDS
            for number in range(at - 1, first, -1):
                for width, ref in layout.unfamiliar(number):
                    if time.monotonic() < deadline and _loads(layout.edit(number, width)):
                        return number, f"{layout.message(number, width, ref, same_kind=True)} ({problem})"
        return at, problem  # our own messages (keys that repeat, aliases, impossible dates)
    if "'\\t'" in problem:
        return at, f"line {at} has a tab character where YAML expects spaces: {_SPACES} (your editor can insert them)"
    if problem.startswith("found character") or "alias" in context or "anchor" in context:
        mark = cm if ("alias" in context or "anchor" in context) and cm is not None else pm
        ch = lines[mark.line][mark.column] if mark is not None and mark.column < len(lines[mark.line]) else "?"
        return at, (
            f"line {at}: a text cannot start with '{ch}' unless it is in quotes: write it as \"{ch}…\" "
            "(the whole text between double quotes)"
        )
    if "block scalar" in context:
        return ctx, (
            f"line {ctx}: nothing but a comment may follow '|' or '>' on its line: start the text on the next "
            "line, indented further than the key"
        )
    if "quoted scalar" in context:
        if "escape" in problem:
            return at, (
                f'line {at}: a backslash inside "..." starts an escape such as \\n: write \\\\ for a backslash, '
                "or use '...' quotes"
            )
        quote = lines[ctx - 1][cm.column] if cm is not None and cm.column < len(lines[ctx - 1]) else '"'
        return ctx, (
            f"line {ctx}: the quote ({quote}) opened on this line is never closed: add the closing quote at the end "
            "of the text, or remove the opening one"
        )
    if "flow sequence" in context or "flow mapping" in context:
        opening = "[" if "sequence" in context else "{"
        advice = _quote_advice("{", ctx) if opening == "{" and _value_start(lines[ctx - 1]) == "{" else None
        return ctx, advice or (
            f"line {ctx}: the list opened with '{opening}' is not closed with '{']' if opening == '[' else '}'}' "
            f"before line {at}, or an item in it holds ',', ':', '[' or '{{': close it, and put such an item in quotes"
        )
    if "simple key" in context:
        return ctx, (
            f"line {ctx} is neither 'key: value' nor a '- ' item: add the missing ':' or '- ', or, if it "
            "continues the text above, put that text in quotes or after '|'"
        )
    m = _KEY_RE.match(text)
    if problem == "mapping values are not allowed here" and m is not None and pm is not None and pm.column >= m.end():
        return at, (
            f"line {at}: the text after '{m.group(2).strip()}:' holds ': ', which YAML reads as another key: "
            'put the whole text in quotes ("...")'
        )
    culprit = _find_culprit(lines, at)
    if culprit is not None:
        return culprit
    before = text[: pm.column].strip() if pm is not None else ""
    if problem.startswith("expected <block end>") and before not in ("", "-"):
        advice = _quote_advice(_value_start(text), at)
        if advice:
            return at, advice
    if "'-'" in problem and "mapping" in context:
        return at, (
            f"line {at}: a list item ('- ') where a 'key: value' line belongs: is the key above it missing "
            f"(e.g. 'questions:'), or is the line indented wrongly? {_SPACES}"
        )
    if "collection" in context and ("'?'" in problem or "mapping start" in problem):
        return at, (
            f"line {at}: a 'key: value' line inside a list: start it with '- ' if it is a new item, or line "
            f"it up with the keys of the item above; {_SPACES}"
        )
    if problem == "mapping values are not allowed here" or problem.startswith(("expected <block end>", "did not find")):
        return at, _misaligned(lines, at)
    where = f"{context}: {problem}" if context and problem else problem or str(exc)
    return at, f"YAML syntax: {where}"


# ---------------------------------------------------------------- reading files safely

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words staff know."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _too_large(name: str, size: int | None) -> YamlProblem:
    said = f"{size:,} bytes" if size is not None else f"more than {MAX_FILE_BYTES:,} bytes"
    return YamlProblem(name, 1, f"file is too large ({said}; the limit is {MAX_FILE_BYTES:,})")


def read_capped(path: Path, shown_as: str | None = None) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES. Never blocks and never reads more than
    the cap: a folder, pipe or device (/dev/zero linked as a .yaml) is refused from its type alone."""
    name = shown_as or str(path)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise YamlProblem(name, 1, "this is a folder, not a file: only regular files are read") from None
        raise YamlProblem(name, 1, f"cannot read the file: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise YamlProblem(
                name, 1, f"this is {file_kind(info.st_mode)}, not a file: only regular files are read (remove it)"
            )
        if info.st_size > MAX_FILE_BYTES:
            raise _too_large(name, info.st_size)
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > MAX_FILE_BYTES:  # it grew while we read it
                raise _too_large(name, None)
        return b"".join(chunks)
    except OSError as exc:
        raise YamlProblem(name, 1, f"cannot read the file: {exc.strerror}") from None
    finally:
        os.close(fd)


def decode_text(raw: bytes, shown_as: str) -> str:
    """UTF-8 text (a BOM is allowed), or a YamlProblem at the line of the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlProblem(shown_as, line, "the file is not UTF-8 text: save it as UTF-8 in your editor") from None


def read_yaml(path: Path, shown_as: str | None = None) -> Any:
    """Read one YAML file safely (regular files only, size cap, UTF-8 only, no aliases)."""
    name = shown_as or str(path)
    return parse_yaml(decode_text(read_capped(path, name), name), name)


def file_signature(path: Path) -> bytes:
    """What a live reload compares to notice that staff saved a file, read as safely as read_yaml:
    a hash of a regular file's bytes (its size and time alone when it is over the cap), the kind of
    anything else. Never blocks, never reads more than the cap, never raises."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        return f"<unreadable {exc.errno}>".encode()
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return f"<not a file {stat.S_IFMT(info.st_mode)}>".encode()
        large = f"<too large {info.st_size} {info.st_mtime_ns}>".encode()
        if info.st_size > MAX_FILE_BYTES:
            return large
        digest, total = hashlib.sha256(), 0
        while chunk := os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - total)):
            digest.update(chunk)
            total += len(chunk)
            if total > MAX_FILE_BYTES:
                return large
        return digest.digest()
    except OSError as exc:
        return f"<unreadable {exc.errno}>".encode()
    finally:
        os.close(fd)


# ---------------------------------------------------------------- invisible characters in texts

# Control characters (NUL, ESC, DEL, the C1 range...), lone surrogates and non-characters: YAML
# refuses them typed raw, but a "\0", "\x1b" or "\ud800" escape in double quotes lets them in, and
# Telegram refuses (or a UTF-8 encoder chokes on) a message that holds one. Line breaks and tabs pass.
CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_CONTROL_NAMES = {0: "NUL", 0x1B: "ESC", 0x7F: "DEL", 0x0D: "carriage return", 0x0C: "form feed", 0x08: "backspace"}


def control_characters(data: Any) -> Iterator[tuple[int, str, str]]:
    """(line, where, character name) for every text (key or value) in parsed YAML that holds a
    control character; `where` names the key, e.g. 'answer'."""
    if not getattr(data, "escaped", True):
        return
    stack: list[tuple[Any, Any, object]] = [(data, None, None)]
    while stack:
        value, parent, key = stack.pop()
        if isinstance(value, LineDict):
            for k, v in value.items():
                if CONTROL_RE.search(k):
                    yield value.line_of(k), "a key", _char_name(k)
                stack.append((v, value, k))
        elif isinstance(value, LineList):
            stack.extend((v, value, i) for i, v in enumerate(value))
        elif isinstance(value, str) and (m := CONTROL_RE.search(value)):
            if isinstance(parent, LineDict) and isinstance(key, str):
                yield parent.value_line(key, m.start()), f"'{key}'", _char_name(m.group())
            elif isinstance(parent, LineList) and isinstance(key, int):
                yield parent.line_at(key), f"item {key + 1}", _char_name(m.group())


def _char_name(text: str) -> str:
    ch = CONTROL_RE.search(text)
    code = ord(ch.group()) if ch else 0
    name = _CONTROL_NAMES.get(code)
    return f"U+{code:04X}" + (f", {name}" if name else "")


def parse_date(value: object) -> dt.date | None:
    """A YAML date (read as a date, or written as "2026-12-07" in quotes), else None."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None
