"""Taught phrasings: questions the bot missed that staff attached to an entry (faq/taught.yaml).

The file is written by the teach buttons of /unanswered and by `python -m bot teach`, read with the
rest of the FAQ (each phrasing joins its entry's questions in its language, so the matcher, and
anything else trained on the entries' questions, learns it at load), checked by `check` like every
other file, and emptied into the section files by `python -m bot teach --merge`.

Pure but for the thin reads and writes at the bottom; faq.py calls `load_taught` and `merge_taught`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import difflib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bot.normalize import normalize, tokens
from bot.privacy import DOC, EMAIL, IIN, LINK, PHONE, TOKEN, USER, scrub
from bot.problems import Problems
from bot.yamlio import LineDict, LineList, YamlProblem, parse_date, read_yaml

if TYPE_CHECKING:
    from bot.faq import Entry

TAUGHT_FILE = "taught.yaml"
SCRUB_TAGS = (PHONE, EMAIL, IIN, DOC, USER, LINK, TOKEN)
ITEM_KEYS = ("entry", "lang", "text", "date", "by")
TEXT_MAX = 400  # a phrasing, not a story: a longer one is almost never how anyone else will ask
BY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")

HEADER = """\
# Phrasings the bot learnt from questions it could not answer, taught by staff from /unanswered
# (the buttons under each question) or with `python -m bot teach`. Each one counts as one of its
# entry's questions in that language. Checked by `python -m bot check` like every FAQ file.
# `python -m bot teach --merge` moves them into the section files (faq/<section>.yaml) and empties
# this list. Only scrubbed text can be taught: no phone numbers, e-mails or document numbers.
#   entry: the entry id     lang: ru, kk or en     text: the phrasing, one line
#   date: when it was taught     by: who taught it (a pseudonym: tg-... for an admin in Telegram)
"""


@dataclass(frozen=True)
class Taught:
    """One taught phrasing; `line` is where it starts in taught.yaml (0 when not read from a file)."""

    entry_id: str
    lang: str
    text: str
    date: dt.date
    by: str
    line: int = 0


def phrasing_key(text: str) -> str:
    """What the matcher sees of a phrasing: two texts with the same key are the same question."""
    return " ".join(tokens(normalize(text)))


def clean_text(text: str) -> str:
    """A stored question as a phrasing (exactly what will be added): the tags scrubbing left in place
    of personal data ("[phone]") left out, since nobody asks in tags; one line, single spaces."""
    for tag in SCRUB_TAGS:
        text = text.replace(tag, " ")
    return " ".join(text.split())


def text_problem(text: str) -> str | None:
    """Why a text cannot be taught as it is, or None."""
    if not text.strip():
        return "the phrasing is empty"
    tags = [tag for tag in SCRUB_TAGS if tag in text]
    if tags:
        return f"the phrasing still holds {', '.join(tags)} where personal data was: leave it out"
    if text != clean_text(text):
        return "a phrasing is one line with single spaces"
    if len(text) > TEXT_MAX:
        return f"the phrasing is {len(text)} characters; at most {TEXT_MAX}"
    if scrub(text) != text:
        return "the phrasing holds personal data (a number, e-mail or @name): only scrubbed text can be taught"
    if not phrasing_key(text):
        return "the phrasing has no words to learn from"
    return None


# ---------------------------------------------------------------- reading and checking


def load_taught(
    path: Path,
    shown: str,
    entries: Mapping[str, Entry],
    languages: tuple[str, ...],
    today: dt.date,
    p: Problems,
) -> tuple[Taught, ...]:
    """Read and check taught.yaml against the loaded entries; every problem goes to `p` with its line.

    Errors: a broken item, an unknown entry or language, a phrasing that is not scrubbed, one that
    another entry already has (it would turn that entry's direct answer into "did you mean").
    Warnings: a phrasing its entry already has, or one taught twice (harmless, but clutter).
    """
    try:
        data = read_yaml(path, shown)
    except YamlProblem as exc:
        p.error(exc.path, exc.line, exc.message)
        return ()
    if data is None:
        return ()
    items = data.get("taught") if isinstance(data, LineDict) else None
    if not isinstance(data, LineDict) or (items is not None and not isinstance(items, list)):
        p.error(shown, 1, "taught.yaml needs 'taught:', a list of phrasings (entry, lang, text, date, by)")
        return ()
    for key in data:
        if key != "taught":
            p.error(shown, data.line_of(key), f"unknown field '{key}' at the top of the file (known: taught)")
    if not items:
        return ()  # nothing taught: no need to key every phrasing of the FAQ (about 50 ms)
    owners: dict[str, tuple[str, str]] = {}  # phrasing key -> (entry id, where it is)
    for entry in entries.values():
        for block in entry.langs.values():
            for question in block.questions:
                owners.setdefault(phrasing_key(question), (entry.id, f"{entry.file}:{entry.line}"))
    out: list[Taught] = []
    for i, raw in enumerate(items or []):
        line = items.line_at(i) if isinstance(items, LineList) else 1
        item = _parse_item(raw, line, shown, entries, languages, today, p)
        if item is None:
            continue
        key = phrasing_key(item.text)
        owner = owners.get(key)
        if owner is not None and owner[0] != item.entry_id:
            p.error(
                shown,
                line,
                f"'{item.text}' is already a question of entry '{owner[0]}' ({owner[1]}): a phrasing in two "
                "entries makes the bot ask 'did you mean' instead of answering; keep it in one",
            )
            continue
        if owner is not None:
            p.warn(shown, line, f"'{item.text}' is already a question of entry '{item.entry_id}' ({owner[1]})")
            continue
        owners[key] = (item.entry_id, f"{shown}:{line}")
        out.append(item)
    return tuple(out)


def _parse_item(
    raw: object,
    line: int,
    shown: str,
    entries: Mapping[str, Entry],
    languages: tuple[str, ...],
    today: dt.date,
    p: Problems,
) -> Taught | None:
    if not isinstance(raw, LineDict):
        p.error(shown, line, "each taught phrasing is a block with entry, lang, text, date and by")
        return None
    ok = True
    for key in raw:
        if key not in ITEM_KEYS:
            near = difflib.get_close_matches(str(key), ITEM_KEYS, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else f" (known: {', '.join(ITEM_KEYS)})"
            p.error(shown, raw.line_of(key), f"unknown field '{key}'{hint}")
            ok = False
    for key in ITEM_KEYS:
        if key not in raw:
            p.error(shown, line, f"taught phrasing: '{key}' is missing")
            ok = False
    if not ok:
        return None
    entry_id, lang, text, by = raw["entry"], raw["lang"], raw["text"], raw["by"]
    if not isinstance(entry_id, str) or entry_id not in entries:
        near = difflib.get_close_matches(str(entry_id), list(entries), n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else " (renamed or removed? move or delete this phrasing)"
        p.error(shown, raw.line_of("entry"), f"entry {entry_id!r} does not exist{hint}")
        ok = False
    if lang not in languages:
        p.error(shown, raw.line_of("lang"), f"lang {lang!r} must be one of {', '.join(languages)}")
        ok = False
    if isinstance(text, int | float) and not isinstance(text, bool):
        text = str(text)
    problem = text_problem(text) if isinstance(text, str) else "the phrasing must be a text"
    if problem is not None:
        p.error(shown, raw.line_of("text"), f"taught phrasing: {problem}")
        ok = False
    date = parse_date(raw["date"])
    if date is None or date > today + dt.timedelta(days=1):  # a day ahead: the office's day may be UTC's next
        p.error(shown, raw.line_of("date"), "'date' must be a date like 2026-12-01, not in the future")
        ok = False
    if not isinstance(by, str) or not BY_RE.match(by):
        p.error(shown, raw.line_of("by"), "'by' must be a short name or pseudonym (letters, digits, - _ .)")
        ok = False
    if not ok or date is None:
        return None
    return Taught(str(entry_id), str(lang), str(text), date, str(by), line)


def merge_taught(entries: MutableMapping[str, Entry], taught: Iterable[Taught]) -> None:
    """Add each taught phrasing to its entry's questions (in its language), after the entry's own."""
    for item in taught:
        entry = entries.get(item.entry_id)
        if entry is None or item.lang not in entry.langs:
            continue
        block = entry.langs[item.lang]
        block = dataclasses.replace(block, questions=(*block.questions, item.text))
        entries[item.entry_id] = dataclasses.replace(entry, langs={**entry.langs, item.lang: block})


# ---------------------------------------------------------------- writing


def yaml_scalar(text: str) -> str:
    """The text as one YAML scalar on one line, quoted only when YAML needs it."""
    dumped = yaml.safe_dump(text, allow_unicode=True, default_flow_style=True, width=10**6)
    return dumped.removesuffix("\n").removesuffix("\n...").strip()


def format_item(item: Taught) -> str:
    return (
        f"  - entry: {item.entry_id}\n"
        f"    lang: {item.lang}\n"
        f"    text: {yaml_scalar(item.text)}\n"
        f"    date: {item.date.isoformat()}\n"
        f"    by: {item.by}\n"
    )


def render_file(items: Iterable[Taught], head: str = HEADER) -> str:
    body = "".join(format_item(i) for i in items)
    return f"{head}taught:\n{body}" if body else f"{head}taught: []\n"


def _header_of(text: str) -> str:
    """Everything above the `taught:` line (the comments staff may have edited)."""
    lines = text.splitlines(keepends=True)
    for n, line in enumerate(lines):
        if line.startswith("taught:"):
            return "".join(lines[:n])
    return HEADER


def with_item(text: str | None, item: Taught) -> str:
    """taught.yaml's text with one phrasing appended at the end (comments and other items kept)."""
    if text is None or not text.strip():
        return render_file([item])
    lines = text.splitlines(keepends=True)
    for n, line in enumerate(lines):
        if re.match(r"^taught:\s*(\[\s*\])?\s*(#.*)?$", line):
            lines[n] = "taught:\n"
            break
    else:
        lines.append("taught:\n")
    out = "".join(lines)
    if not out.endswith("\n"):
        out += "\n"
    return out + format_item(item)


def write_atomically(path: Path, text: str) -> None:
    """Write a whole file so that a reader (the bot's reload) sees the old or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def append_taught(path: Path, item: Taught) -> None:
    """Add one phrasing to taught.yaml (created with its explaining header when missing)."""
    old = path.read_text(encoding="utf-8") if path.exists() else None
    write_atomically(path, with_item(old, item))


# ---------------------------------------------------------------- merging into the section files


@dataclass(frozen=True)
class MergePlan:
    """What `teach --merge` will write: new texts of section files, and what stays in taught.yaml."""

    files: Mapping[Path, str]  # section file -> its new text
    merged: tuple[Taught, ...]
    kept: tuple[tuple[Taught, str], ...]  # (phrasing, why it stays in taught.yaml)
    taught_text: str  # taught.yaml's new text


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def plan_merge(faq_dir: Path, entries: Mapping[str, Entry], taught: Iterable[Taught]) -> MergePlan:
    """Where each taught phrasing goes: a new line after the last question of its entry's language
    block, indented like the others, so comments, order and layout of the file stay as they were.
    A phrasing whose question list is not a plain block list (e.g. `questions: [a, b]`) stays in
    taught.yaml, with the reason."""
    inserts: dict[Path, list[tuple[int, str, Taught]]] = {}
    kept: list[tuple[Taught, str]] = []
    parsed: dict[Path, tuple[list[str], object]] = {}
    for item in taught:
        entry = entries.get(item.entry_id)
        if entry is None:
            kept.append((item, f"entry '{item.entry_id}' does not exist"))
            continue
        path = Path(entry.file)  # as the loader showed it: relative to the working folder, or absolute
        if not path.exists():
            path = faq_dir / path.name
        if path not in parsed:
            try:
                parsed[path] = (path.read_text(encoding="utf-8").splitlines(keepends=True), read_yaml(path))
            except (OSError, YamlProblem) as exc:
                parsed[path] = ([], None)
                kept.append((item, f"{path} cannot be read: {exc}"))
                continue
        lines, data = parsed[path]
        spot = _insertion_point(lines, data, item)
        if isinstance(spot, str):
            kept.append((item, spot))
            continue
        at, indent = spot
        inserts.setdefault(path, []).append((at, f"{' ' * indent}- {yaml_scalar(item.text)}\n", item))
    files: dict[Path, str] = {}
    merged: list[Taught] = []
    for path, adds in inserts.items():
        lines = list(parsed[path][0])
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        at_line: dict[int, list[str]] = {}
        for at, new_line, item in adds:
            at_line.setdefault(at, []).append(new_line)
            merged.append(item)
        for at in sorted(at_line, reverse=True):  # bottom up: earlier positions stay valid
            lines[at:at] = at_line[at]
        files[path] = "".join(lines)
    return MergePlan(files, tuple(merged), tuple(kept), "")


def _insertion_point(lines: list[str], data: object, item: Taught) -> tuple[int, int] | str:
    """(line index to insert before, indentation of the dash) or why the phrasing cannot go there."""
    raw_entries = data.get("entries") if isinstance(data, LineDict) else None
    raw = next((e for e in raw_entries or [] if isinstance(e, LineDict) and e.get("id") == item.entry_id), None)
    block = raw.get(item.lang) if isinstance(raw, LineDict) else None
    questions = block.get("questions") if isinstance(block, LineDict) else None
    if not isinstance(questions, LineList) or not questions or not isinstance(block, LineDict):
        return f"entry '{item.entry_id}' ({item.lang}) has no question list in its file"
    key_line = block.line_of("questions")
    last = questions.line_at(len(questions) - 1)
    if last <= key_line or last > len(lines):
        return f"entry '{item.entry_id}' ({item.lang}): the questions are not one per line; add it by hand"
    dash = re.match(r"^( *)- ", lines[last - 1])
    if dash is None:
        return f"entry '{item.entry_id}' ({item.lang}): the last question's line is unusual; add it by hand"
    indent = len(dash.group(1))
    at = last  # 0-based index of the line after the last item
    while at < len(lines) and lines[at].strip() and _indent(lines[at]) > indent:
        at += 1  # the last question goes on over more lines
    return at, indent


def merge_texts(plan: MergePlan, taught_path: Path, all_taught: Iterable[Taught]) -> MergePlan:
    """The plan with taught.yaml's new text: its header kept, only the phrasings not merged left."""
    merged = set(plan.merged)
    old = taught_path.read_text(encoding="utf-8") if taught_path.exists() else ""
    rest = [t for t in all_taught if t not in merged]
    return dataclasses.replace(plan, taught_text=render_file(rest, _header_of(old) if old else HEADER))
