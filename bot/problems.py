"""Problems found in staff-edited files, reported as `file:line: message`."""

from __future__ import annotations

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
