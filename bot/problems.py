"""Problems found in staff-edited files, reported as `file:line: message`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    message: str
    warning: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        tag = "warning: " if self.warning else ""
        return f"{self.file}:{self.line}: {tag}{self.message}"


class Problems:
    """Collects every problem of a check, so staff see them all at once, not one per run."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def error(self, file: str, line: int, message: str) -> None:
        self.items.append(Problem(file, line, message))

    def warn(self, file: str, line: int, message: str) -> None:
        self.items.append(Problem(file, line, message, warning=True))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if not p.warning]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.warning]


class ContentError(Exception):
    """Content (config or FAQ) that must not be served; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def nearest(word: str, known: Iterable[str]) -> str | None:
    """The known word closest to a misspelt one ('admin' → 'admins', 'office_phone' → 'office_phones'),
    or None when nothing is close."""
    choices = {k.casefold(): k for k in known}
    cutoff = 0.6 if len(word) > 3 else 0.5  # 'kz' for 'kk' is one letter in two
    found = difflib.get_close_matches(word.casefold(), list(choices), n=1, cutoff=cutoff)
    return choices[found[0]] if found else None


def did_you_mean(word: str, known: Iterable[str], fmt: str = "'{}'") -> str:
    """' (did you mean 'admins'?)' when a known word is close to `word`, else ''."""
    close = nearest(word, known)
    return f" (did you mean {fmt.format(close)}?)" if close is not None else ""
