"""`python -m bot check` on broken FAQ samples: exit 1 and `file:line: message` at the real line.

Each folder of tests/data/broken/ is the `valid` sample (one section file, two entries) broken in one
way; the line the problem must be reported on carries the comment `# <- PROBLEM`. The tests assemble
a runnable copy in tmp_path: the sample's section file(s), the real faq/ui.yaml and config.yaml
(copied at run time, so the samples never go stale when the UI texts or the config change).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CONFIG, DATA, ContentCopy, RunCli, copy_content

from bot.content import load_knowledge
from bot.problems import ContentError
from bot.yamlio import MAX_FILE_BYTES

BROKEN = DATA / "broken"
MARKER = re.compile(r"#\s*<- PROBLEM\s*$")
SECTION_FILE = "asylum.yaml"
SHOWN = f"faq/{SECTION_FILE}"  # how check names the file when run from the copy's root

Check = Callable[[str], subprocess.CompletedProcess[str]]


def marked_lines(case: str) -> list[int]:
    """1-based numbers of the lines marked `# <- PROBLEM` in a sample."""
    raw = (BROKEN / case / SECTION_FILE).read_bytes()
    return [n for n, line in enumerate(raw.split(b"\n"), 1) if MARKER.search(line.decode("latin-1"))]


@pytest.fixture(scope="module")
def check(tmp_path_factory: pytest.TempPathFactory, cli: RunCli) -> Check:
    """Run `python -m bot check --faq faq --config config.yaml` on a sample, once per sample."""
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def run(case: str) -> subprocess.CompletedProcess[str]:
        if case not in results:
            root = copy_content(tmp_path_factory.mktemp(case), faq_files=BROKEN / case).root
            results[case] = cli("check", "--faq", "faq", "--config", "config.yaml", cwd=root)
        return results[case]

    return run


# (sample folder, what the message must say)
CASES = [
    ("yaml-syntax", "YAML syntax: mapping values are not allowed here"),
    ("duplicate-id", "duplicate id 'asylum-apply' (first defined at faq/asylum.yaml:9)"),
    ("missing-language", "entry 'hotline': the 'kk' language block is missing"),
    ("empty-questions", "entry 'hotline' (en): 'questions' is empty"),
    ("answer-too-long", "Telegram's limit is 4096"),
    ("unknown-placeholder", "entry 'hotline' (ru) answer: unknown placeholder {helpsite}"),
    ("bad-source-url", "entry 'hotline': source is not a valid web address: 'https//help.unhcr.org/centralasia'"),
    ("missing-sources", "entry 'hotline': at least one source URL is needed"),
    ("reviewed-future", "entry 'hotline': 'reviewed' date 2999-01-01 is in the future"),
    ("title-too-long", "entry 'asylum-apply' (en): title is 53 characters; a button fits 32"),
    ("unknown-related", "entry 'asylum-apply': related id 'asylum-appeal' does not exist"),
    ("alias-bomb", "YAML aliases (*name) are not allowed"),
    ("not-utf8", "the file is not UTF-8 text"),
]

# Samples whose problem once crashed the loader (see the tests below).
CRASHING = [
    ("impossible-date", "'reviewed'"),
    ("complex-key", ""),
]


def test_every_sample_folder_is_tested() -> None:
    folders = {p.name for p in BROKEN.iterdir() if p.is_dir()}
    named = {c for c, _ in CASES} | {c for c, _ in CRASHING} | {"valid", "two-problems"}
    assert folders == named
    for case in folders - {"valid"}:
        assert marked_lines(case), f"{case} has no '# <- PROBLEM' marker"


def test_valid_sample_passes(check: Check) -> None:
    result = check("valid")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: 2 entries in 1 sections, 3 languages" in result.stdout
    assert "FAIL" not in result.stdout
    assert not result.stderr


@pytest.mark.parametrize(("case", "message"), CASES, ids=[c for c, _ in CASES])
def test_broken_sample_fails_with_its_message(check: Check, case: str, message: str) -> None:
    result = check(case)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith(f"{SHOWN}:")]
    assert any(message in line for line in problems), result.stdout
    assert "FAIL:" in result.stdout


LINE_CASES = [pytest.param(case, message, id=case) for case, message in CASES]


@pytest.mark.parametrize(("case", "message"), LINE_CASES)
def test_broken_sample_reports_the_real_line(check: Check, case: str, message: str) -> None:
    result = check(case)
    (line,) = marked_lines(case)
    expected = f"{SHOWN}:{line}: "
    hits = [out for out in result.stdout.splitlines() if message in out]
    assert hits, result.stdout
    assert all(out.startswith(expected) for out in hits), f"expected {expected!r}:\n{result.stdout}"


def test_all_problems_of_a_file_are_printed_at_once(check: Check) -> None:
    result = check("two-problems")
    assert result.returncode == 1
    title_line, placeholder_line = marked_lines("two-problems")
    out = result.stdout
    assert f"{SHOWN}:{title_line}: entry 'asylum-apply' (en): title is 53 characters" in out
    assert f"{SHOWN}:{placeholder_line}: entry 'hotline' (ru) answer: unknown placeholder {{helpsite}}" in out
    assert "FAIL: 2 error(s)" in out


def test_missing_sources_names_both_problems_on_the_entry_line(check: Check) -> None:
    result = check("missing-sources")
    (line,) = marked_lines("missing-sources")
    assert f"{SHOWN}:{line}: 'sources' is missing" in result.stdout
    assert f"{SHOWN}:{line}: entry 'hotline': at least one source URL is needed" in result.stdout


def test_file_over_the_size_limit(tmp_path: Path, cli: RunCli) -> None:
    root = copy_content(tmp_path / "big", faq_files=BROKEN / "valid").root
    big = root / "faq" / SECTION_FILE
    valid = big.read_text("utf-8")
    padding = "# padding to make the file too large\n" * (MAX_FILE_BYTES // 37 + 10)
    big.write_text(valid + padding, "utf-8")
    assert big.stat().st_size > MAX_FILE_BYTES
    result = cli("check", "--faq", "faq", "--config", "config.yaml", cwd=root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{SHOWN}:1: file is too large" in result.stdout
    assert f"the limit is {MAX_FILE_BYTES:,}" in result.stdout


def test_problems_in_several_files_are_all_listed(tmp_path: Path, cli: RunCli) -> None:
    root = copy_content(tmp_path / "two-files", faq_files=BROKEN / "title-too-long").root
    other = (BROKEN / "bad-source-url" / SECTION_FILE).read_text("utf-8")
    # a second section with other ids, carrying the bad source URL
    other = other.replace("section: asylum", "section: help").replace("asylum-apply", "second-apply")
    other = other.replace("id: hotline", "id: second-hotline").replace("[hotline]", "[second-hotline]")
    (root / "faq" / "help.yaml").write_text(other, "utf-8")
    result = cli("check", "--faq", "faq", "--config", "config.yaml", cwd=root)
    assert result.returncode == 1
    assert f"{SHOWN}:{marked_lines('title-too-long')[0]}: " in result.stdout
    assert f"faq/help.yaml:{marked_lines('bad-source-url')[0]}: " in result.stdout


def test_a_missing_ui_file_is_a_problem(tmp_path: Path, cli: RunCli) -> None:
    root = copy_content(tmp_path / "no-ui", faq_files=BROKEN / "valid").root
    (root / "faq" / "ui.yaml").unlink()
    result = cli("check", "--faq", "faq", "--config", "config.yaml", cwd=root)
    assert result.returncode == 1
    assert "faq/ui.yaml:1: ui.yaml (the bot's own texts) is missing" in result.stdout


def test_a_missing_faq_folder_is_a_problem(tmp_path: Path, cli: RunCli) -> None:
    shutil.copy2(CONFIG, tmp_path / "config.yaml")
    result = cli("check", "--faq", "nowhere", "--config", "config.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert "nowhere:1: the FAQ folder does not exist" in result.stdout


def test_impossible_date_is_a_problem_not_a_crash(check: Check) -> None:
    result = check("impossible-date")
    (line,) = marked_lines("impossible-date")
    assert "Traceback" not in result.stderr, result.stderr[-400:]
    assert result.returncode == 1
    assert f"{SHOWN}:{line}: " in result.stdout


def test_complex_key_is_a_problem_not_a_crash(check: Check) -> None:
    result = check("complex-key")
    (line,) = marked_lines("complex-key")
    assert "Traceback" not in result.stderr, result.stderr[-400:]
    assert result.returncode == 1
    assert f"{SHOWN}:{line}: " in result.stdout


def test_an_unknown_top_level_field_is_reported_at_its_line(content_copy: ContentCopy) -> None:
    # "entry:" for "entries:" or a stray key would otherwise be dropped without a word
    path = content_copy.faq / "help.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(1, "note: check the phone numbers")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_knowledge(content_copy.config, None, dt.date(2026, 12, 1))
    (problem,) = [str(e) for e in caught.value.problems if "unknown field 'note'" in str(e)]
    assert problem.endswith("help.yaml:2: unknown field 'note' at the top of the file (known: section, title, entries)")
