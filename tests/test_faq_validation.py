"""`python -m bot check` on broken FAQ samples: exit 1 and `file:line: message` at the real line.

Each folder of tests/data/broken/ is the `valid` sample (one section file, two entries) broken in one
way; the line the problem must be reported on carries the comment `# <- PROBLEM`. The tests assemble
a runnable copy in tmp_path: the sample's section file(s), the real faq/ui.yaml and config.yaml
(copied at run time, so the samples never go stale when the UI texts or the config change).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CONFIG, DATA, ContentCopy, RunCli, copy_content
from hypothesis import given, settings
from hypothesis import strategies as st
from test_yamlio import run_capped

from bot.content import load_knowledge
from bot.faq import html_issues
from bot.problems import ContentError
from bot.yamlio import MAX_FILE_BYTES

BROKEN = DATA / "broken"
MARKER = re.compile(r"#\s*(<|&lt;)- PROBLEM\s*$")  # inside a '|' text the marker is written as HTML
SECTION_FILE = "asylum.yaml"
SHOWN = f"faq/{SECTION_FILE}"  # how check names the file when run from the copy's root

Check = Callable[[str], subprocess.CompletedProcess[str]]


def marked_lines(case: str, file: str = SECTION_FILE) -> list[int]:
    """1-based numbers of the lines marked `# <- PROBLEM` in a sample."""
    raw = (BROKEN / case / file).read_bytes()
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
    ("yaml-syntax", "line 18: the text after 'title:' holds ': ', which YAML reads as another key: put the whole text"),
    ("duplicate-id", "duplicate id 'asylum-apply' (first defined at faq/asylum.yaml:9)"),
    ("missing-language", "entry 'hotline': the 'kk' language block is missing"),
    ("empty-questions", "entry 'hotline' (en): 'questions' is empty"),
    ("answer-too-long", "Telegram's limit is 4096"),
    ("unknown-placeholder", "entry 'hotline' (ru) answer: unknown placeholder {helpsite} (did you mean {help_site}?)"),
    ("bad-source-url", "entry 'hotline': source is not a valid web address: 'https//help.unhcr.org/centralasia'"),
    ("missing-sources", "entry 'hotline': at least one source URL is needed"),
    ("reviewed-future", "entry 'hotline': 'reviewed' date 2999-01-01 is in the future"),
    ("title-too-long", "entry 'asylum-apply' (en): title is 53 characters; a button fits 32"),
    ("unknown-related", "entry 'asylum-apply': related id 'asylum-appeal' does not exist"),
    ("alias-bomb", "YAML aliases (*name) are not allowed"),
    ("not-utf8", "the file is not UTF-8 text"),
    # issue 15: what `check` used to pass although it breaks the bot, or explained in parser words
    (
        "placeholder-typo",
        "entry 'hotline' (kk) answer: unknown placeholder {office_phone} (did you mean {office_phones}?)",
    ),
    ("unknown-field", "entry 'hotline': unknown field 'sorces' (did you mean 'sources'?)"),
    ("unknown-language-field", "entry 'hotline' (en): unknown field 'quesions' (did you mean 'questions'?)"),
    ("duplicate-phrasing", "entry 'hotline' (en): the question is also in entry 'asylum-apply' (faq/asylum.yaml:52)"),
    ("folded-question", "entry 'hotline' (en): line 107 is indented more than line 106, so YAML joined it to the "),
    ("yaml-indent", "line 73 is indented more than line 72"),
    ("yaml-tab", "line 85 has a tab character where YAML expects spaces: use spaces, not tabs"),
    ("yaml-unclosed-quote", 'line 72: the quote (") opened on this line is never closed'),
    # issue 14: what Telegram refuses, or drops without a word
    ("span-without-class", "entry 'hotline' (en) answer: Telegram accepts <span> only as <span class=\"tg-spoiler\">"),
    ("long-id", "its buttons carry 'fb:<id>:1', and Telegram takes at most 64 bytes there"),
    ("control-character", "'title' holds an invisible control character (U+0000, NUL)"),
]

# Samples whose problem once crashed the loader (see the tests below).
CRASHING = [
    ("impossible-date", "'reviewed'"),
    ("complex-key", ""),
]


def test_every_sample_folder_is_tested() -> None:
    folders = {p.name for p in BROKEN.iterdir() if p.is_dir()}
    named = {c for c, _ in CASES} | {c for c, _ in CRASHING} | {"valid", "two-problems", "no-cascade"}
    assert folders == named
    for case in folders - {"valid"}:
        files = [p.name for p in (BROKEN / case).iterdir()]
        assert any(marked_lines(case, f) for f in files), f"{case} has no '# <- PROBLEM' marker"


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
    assert f"{SHOWN}:{placeholder_line}: entry 'hotline' (ru) answer: unknown placeholder {{helpsite}} (did you" in out
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
        load_knowledge(content_copy.config, None, dt.date(2027, 1, 1))
    (problem,) = [str(e) for e in caught.value.problems if "unknown field 'note'" in str(e)]
    assert problem.endswith("help.yaml:2: unknown field 'note' at the top of the file (known: section, title, entries)")


# ---------------------------------------------------------------- no follow-on errors (issue 15)


def test_a_file_that_failed_to_load_causes_no_follow_on_errors(check: Check) -> None:
    """help.yaml has a syntax error; asylum.yaml lists its id 'contacts' as related. One problem, at
    help.yaml's own line: no false "related id 'contacts' does not exist" from the other file."""
    result = check("no-cascade")
    (line,) = marked_lines("no-cascade", "help.yaml")
    assert result.returncode == 1
    assert f"faq/help.yaml:{line}: line {line}: the text after 'title:' holds ': '" in result.stdout
    assert "does not exist" not in result.stdout
    assert "FAIL: 1 error(s)" in result.stdout


def test_a_related_id_that_really_is_missing_is_still_reported(check: Check) -> None:
    result = check("unknown-related")
    assert "related id 'asylum-appeal' does not exist (did you mean 'asylum-apply'?)" in result.stdout


def test_a_broken_ui_file_is_one_problem_not_one_per_text(content_copy: ContentCopy, cli: RunCli) -> None:
    ui = content_copy.faq / "ui.yaml"
    lines = ui.read_text(encoding="utf-8").split("\n")
    n = next(i for i, line in enumerate(lines) if line.startswith("menu_title:"))
    lines[n + 1] = "\t" + lines[n + 1].lstrip()
    ui.write_text("\n".join(lines), encoding="utf-8")
    result = cli("check", "--faq", content_copy.faq, "--config", content_copy.config)
    assert result.returncode == 1
    errors = [
        line for line in result.stdout.splitlines() if ": " in line and "warning" not in line and "ui.yaml" in line
    ]
    assert len(errors) == 1, result.stdout
    assert f"ui.yaml:{n + 2}: line {n + 2} has a tab character" in errors[0]
    assert "FAIL: 1 error(s)" in result.stdout


def test_a_broken_contact_in_the_config_causes_no_link_errors_in_the_answers(
    content_copy: ContentCopy, cli: RunCli
) -> None:
    text = content_copy.config.read_text(encoding="utf-8")
    content_copy.config.write_text(text.replace("  help_site: https://", "  help_site: ", 1), encoding="utf-8")
    result = cli("check", "--faq", content_copy.faq, "--config", content_copy.config)
    assert result.returncode == 1
    assert "'help_site' is not a valid web address" in result.stdout
    assert "'link' is not a valid web address" not in result.stdout
    assert "FAIL: 1 error(s)" in result.stdout


def test_a_question_holding_a_colon_is_named_as_such(content_copy: ContentCopy) -> None:
    path = content_copy.faq / "help.yaml"
    text = path.read_text(encoding="utf-8")
    first = re.search(r"(?m)^        - (.+)$", text)
    assert first is not None
    path.write_text(text.replace(first.group(0), "        - офис: где он", 1), encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_knowledge(content_copy.config, None, dt.date(2027, 1, 1))
    messages = [p.message for p in caught.value.problems]
    assert any("holds ': ', which YAML reads as 'key: value': put it in quotes (\"офис: …\")" in m for m in messages)


def test_the_same_question_twice_in_one_entry_is_a_warning(tmp_path: Path) -> None:
    # the valid sample, not the real FAQ: the check is the same, and the ranker trains in a second, not ten
    content_copy = copy_content(tmp_path / "content", faq_files=BROKEN / "valid")
    path = content_copy.faq / SECTION_FILE
    text = path.read_text(encoding="utf-8")
    first = re.search(r"(?m)^        - (.+)$", text)
    assert first is not None
    path.write_text(text.replace(first.group(0), f"{first.group(0)}\n        - {first.group(1).upper()}", 1), "utf-8")
    loaded = load_knowledge(content_copy.config, None, dt.date(2027, 1, 1))
    assert any("the same question is already on line" in str(w) for w in loaded.warnings)


# ---------------------------------------------------------------- hostile files (issue 14)


def run_limited(*args: str | Path, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python ARGS` with 1 GB of memory at most: a reader that slurps /dev/zero fails fast, not the machine."""
    return run_capped(*args, cwd=cwd, timeout=timeout)


def hostile_folder(root: Path) -> None:
    """A folder, a pipe, /dev/zero and a 1.5 GB file (sparse: no disk), all named *.yaml."""
    (root / "folder.yaml").mkdir()
    os.mkfifo(root / "pipe.yaml")
    (root / "zero.yaml").symlink_to("/dev/zero")
    with (root / "huge.yaml").open("wb") as f:
        f.truncate(1_500_000_000)


def test_check_skips_what_is_not_a_file_and_refuses_a_huge_one(tmp_path: Path) -> None:
    root = copy_content(tmp_path / "c", faq_files=BROKEN / "valid").root
    hostile_folder(root / "faq")
    result = run_limited("-m", "bot", "check", "--faq", "faq", "--config", "config.yaml", cwd=root, timeout=30)
    assert "Traceback" not in result.stderr, result.stderr[-600:]
    assert result.returncode == 1
    assert "faq/huge.yaml:1: file is too large (1,500,000,000 bytes; the limit is 2,000,000)" in result.stdout
    assert "FAIL: 1 error(s)" in result.stdout
    (root / "faq" / "huge.yaml").unlink()
    result = run_limited("-m", "bot", "check", "--faq", "faq", "--config", "config.yaml", cwd=root, timeout=30)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "faq/folder.yaml:1: warning: skipped: this is a folder, not a file" in out
    assert "faq/pipe.yaml:1: warning: skipped: this is a pipe (FIFO), not a file" in out
    assert "faq/zero.yaml:1: warning: skipped: this is a device, not a file" in out
    assert "OK: 2 entries in 1 sections" in out


def test_a_pipe_or_folder_named_ui_yaml_is_an_error_not_a_hang(tmp_path: Path) -> None:
    root = copy_content(tmp_path / "c", faq_files=BROKEN / "valid").root
    (root / "faq" / "ui.yaml").unlink()
    os.mkfifo(root / "faq" / "ui.yaml")
    result = run_limited("-m", "bot", "check", "--faq", "faq", "--config", "config.yaml", cwd=root, timeout=30)
    assert result.returncode == 1
    assert "faq/ui.yaml:1: this is a pipe (FIFO), not a file" in result.stdout
    assert "FAIL: 1 error(s)" in result.stdout


def test_the_live_reload_fingerprint_never_blocks_nor_reads_past_the_cap(tmp_path: Path) -> None:
    """The reload job hashes every faq/*.yaml every 30 s: a pipe used to stop the bot, /dev/zero to fill memory."""
    faq = tmp_path / "faq"
    faq.mkdir()
    hostile_folder(faq)
    (faq / "asylum.yaml").write_text("section: asylum\n", encoding="utf-8")
    code = (
        "import sys; from pathlib import Path; from bot.staff import content_fingerprint; "
        "print(content_fingerprint(Path(sys.argv[1]), Path(sys.argv[2])))"
    )
    result = run_limited("-c", code, CONFIG, faq, cwd=tmp_path, timeout=30)
    assert result.returncode == 0, result.stderr[-600:]
    first = result.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    (faq / "asylum.yaml").write_text("section: asylum  # edited\n", encoding="utf-8")
    again = run_limited("-c", code, CONFIG, faq, cwd=tmp_path, timeout=30)
    assert again.stdout.strip() != first  # an edit is still noticed


# ---------------------------------------------------------------- Telegram's HTML (issue 14)

VALID_HTML = [
    "<b>bold</b> <strong>bold</strong> <i>i</i> <em>em</em> <u>u</u> <ins>ins</ins>",
    "<s>s</s> <strike>strike</strike> <del>del</del>",
    '<span class="tg-spoiler">hidden</span> <tg-spoiler>hidden</tg-spoiler>',
    '<code>x = 1</code> <pre>block</pre> <pre><code class="language-python">x = 1</code></pre>',
    "<blockquote>a quote</blockquote>\n<blockquote expandable>a long quote</blockquote>",
    '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>',
    '<a href="https://help.unhcr.org">help</a> &lt;5 &amp; &gt;3 &quot;q&quot; &#160; &#x2014;',
    "<b>bold <i>and italic</i></b>",
]
INVALID_HTML = [
    ("<span>x</span>", 'Telegram accepts <span> only as <span class="tg-spoiler">'),
    ('<span class="note">x</span>', 'Telegram accepts <span> only as <span class="tg-spoiler">'),
    ("<tg-emoji>👍</tg-emoji>", '<tg-emoji> needs emoji-id="…"'),
    ("line<br>line", "HTML tag <br> is not allowed by Telegram (write a line break instead)"),
    ("<ul><li>x</li></ul>", "HTML tag <ul> is not allowed by Telegram"),
    ("<b>x</i>", "closes nothing open"),
    ("<b><i>x</b></i>", "HTML tag </b> comes before </i>: tags must nest properly"),
    ("<b>x", "HTML tag <b> is never closed"),
    ("<!-- note -->x", "HTML comments (<!-- -->) are not allowed by Telegram"),
    ("a&nbsp;b", "&nbsp; would be shown as typed"),
    ("<b/>", "<b/> is not Telegram HTML"),
    ("5 < 6", "a bare '<' must be written as &lt;"),
    ("<a>x</a>", "<a> needs an href"),
]


@pytest.mark.parametrize("text", VALID_HTML)
def test_what_telegram_accepts_passes(text: str) -> None:
    assert html_issues(text)[0] == []


@pytest.mark.parametrize(("text", "message"), INVALID_HTML, ids=[t for t, _ in INVALID_HTML])
def test_what_telegram_refuses_fails(text: str, message: str) -> None:
    errors = [e for e, _ in html_issues(text)[0]]
    assert any(message in e for e in errors), errors


def test_an_html_problem_is_reported_at_its_own_line_of_the_answer() -> None:
    errors, _ = html_issues("line one\nline two <span>x</span>\nline three <br>")
    offsets = [at for _, at in errors]
    assert offsets == [18, 44]  # the '<' of each bad tag


def rename_id(faq: Path, old: str, new: str) -> None:
    """Rename an entry id where YAML names it: its `id:` line and every `related:` list."""
    token = re.compile(rf"(?<![\w-]){re.escape(old)}(?![\w-])")
    for path in faq.glob("*.yaml"):
        lines = path.read_text("utf-8").split("\n")
        lines = [token.sub(new, x) if re.match(r"^\s*(- id:|related:)", x) else x for x in lines]
        path.write_text("\n".join(lines), "utf-8")


def test_an_entry_id_at_the_limit_passes_and_one_past_it_fails(tmp_path: Path) -> None:
    """Button data "fb:<id>:1" must fit Telegram's 64 bytes, or the button silently vanishes."""
    # the valid sample (its other entry lists this one under related:), not the real FAQ: the same
    # checks, and the ranker trains in a second, not ten
    content_copy = copy_content(tmp_path / "content", faq_files=BROKEN / "valid")
    fits = "a" * 59
    rename_id(content_copy.faq, "hotline", fits)
    assert f"related: [{fits}]" in (content_copy.faq / SECTION_FILE).read_text("utf-8")
    load_knowledge(content_copy.config, None, dt.date(2027, 1, 1))
    rename_id(content_copy.faq, fits, fits + "b")
    with pytest.raises(ContentError) as caught:
        load_knowledge(content_copy.config, None, dt.date(2027, 1, 1))
    assert [p.message for p in caught.value.problems if "64 bytes" in p.message] == [
        f"entry id '{fits}b' is 60 characters: its buttons carry 'fb:<id>:1', and Telegram takes at most 64 bytes "
        "there (the button would silently vanish): keep it to 59"
    ]


def test_a_control_character_in_a_ui_text_or_the_config_fails(content_copy: ContentCopy) -> None:
    ui = content_copy.faq / "ui.yaml"
    ui.write_text(ui.read_text("utf-8").replace('  en: "Choose a topic:"', '  en: "Choose\\x1b a topic:"', 1), "utf-8")
    config = content_copy.config
    config.write_text(config.read_text("utf-8").replace('police: "102"', 'police: "10\\u00002"', 1), "utf-8")
    with pytest.raises(ContentError) as caught:
        load_knowledge(content_copy.config, None, dt.date(2027, 1, 1))
    messages = [str(p) for p in caught.value.problems]
    assert any("ui.yaml" in m and "'en' holds an invisible control character (U+001B, ESC)" in m for m in messages)
    assert any(
        "config.yaml" in m and "'police' holds an invisible control character (U+0000, NUL)" in m for m in messages
    )


# ---------------------------------------------------------------- ui.yaml sign-off (issue 13 point 7)


def write_ui(content_copy: ContentCopy, replace: dict[str, str]) -> Path:
    ui = content_copy.faq / "ui.yaml"
    text = ui.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    ui.write_text(text, encoding="utf-8")
    return ui


def test_ui_texts_carry_checked_marks_and_check_warns_about_drafts(content_copy: ContentCopy) -> None:
    write_ui(
        content_copy,
        {
            "checked:\n  ru: draft\n  kk: draft\n": "checked:\n  ru: Aigerim, 2026-11-20\n  kk: Dana, 2026-11-21\n",
            "menu_title:\n": "menu_title:\n  checked: {kk: draft}\n",
            "back_button:\n": "back_button:\n  checked: draft\n",
        },
    )
    loaded = load_knowledge(content_copy.config, None, dt.date(2027, 1, 1))
    faq = loaded.knowledge.faq
    assert faq.ui_checked["greeting"] == {"ru": "Aigerim, 2026-11-20", "kk": "Dana, 2026-11-21", "en": "draft"}
    assert faq.ui_checked["menu_title"] == {"ru": "Aigerim, 2026-11-20", "kk": "draft", "en": "draft"}
    assert faq.ui_checked["back_button"] == {"ru": "draft", "kk": "draft", "en": "draft"}
    assert "checked" not in faq.ui  # the marks are no UI text
    (warning,) = [str(w) for w in loaded.warnings if "UI texts not yet checked" in str(w)]
    total = len(faq.ui)
    assert warning.endswith(f"ru: back_button; kk: menu_title, back_button; en: all {total}")


def test_ui_drafts_are_one_warning_in_check(cli: RunCli) -> None:
    result = cli("check")
    assert result.returncode == 0
    assert len([line for line in result.stdout.splitlines() if "UI texts not yet checked" in line]) == 1


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (
            {"checked:\n  ru: draft\n": "checked:\n  rus: draft\n"},
            "'rus' is not one of the languages (did you mean 'ru'?)",
        ),
        ({"checked:\n  ru: draft\n": "checked:\n  ru: ''\n"}, "'ru' needs who checked it and when, or draft"),
        ({"checked:\n  ru: draft\n  kk: draft\n  en: draft\n": "checked: [ru]\n"}, "'checked' (the sign-off of the UI"),
        ({"menu_title:\n": "menu_title:\n  checked: 5\n"}, "UI text 'menu_title': 'checked' must be who checked it"),
        ({"menu_title:\n": "menu_title:\n  kz: Тақырып\n"}, "UI text 'menu_title': 'kz' is not one of the languages"),
        (
            {"\nmenu_title:\n": "\nmenu_titel:\n"},
            "UI text 'menu_titel' is not one the bot uses (did you mean 'menu_title'?)",
        ),
    ],
)
def test_a_bad_checked_mark_or_key_in_ui_yaml_fails_at_its_line(
    content_copy: ContentCopy, replace: dict[str, str], message: str
) -> None:
    ui = write_ui(content_copy, replace)
    new = next(iter(replace.values()))
    text = ui.read_text(encoding="utf-8")
    start = text.index(new)
    with pytest.raises(ContentError) as caught:
        load_knowledge(content_copy.config, None, dt.date(2027, 1, 1))
    hits = [p for p in caught.value.problems if message in p.message]
    assert hits, caught.value.problems
    first, last = text.count("\n", 0, start) + 1, text.count("\n", 0, start + len(new))
    assert all(first <= p.line <= last + 1 for p in hits), (hits, first, last)


# ---------------------------------------------------------------- anything at all


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in parsed YAML (keys of mappings, indexes of lists)."""
    out = [here]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*here, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*here, i))
    return out


ODD_VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.booleans(),
    st.text(max_size=20),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.sampled_from(["ru", "kk", "en", "id", "checked", "x"]), st.text(max_size=5), max_size=3),
    st.sampled_from(["<span>x</span>", "{office_phone}", "a\x00b", "<b>", "x" * 70, "{", "&nbsp;"]),
)


@settings(max_examples=60)
@given(data=st.data())
def test_any_value_anywhere_is_a_problem_or_fine_never_a_crash(
    tmp_path_factory: pytest.TempPathFactory, data: Any
) -> None:
    """Replace one value of the valid sample (or of ui.yaml) by something odd: loading gives a FAQ or
    a ContentError, and nothing else."""
    import yaml

    root = copy_content(tmp_path_factory.mktemp("odd"), faq_files=BROKEN / "valid").root
    target = data.draw(st.sampled_from([root / "faq" / SECTION_FILE, root / "faq" / "ui.yaml"]))
    doc = yaml.safe_load(target.read_text("utf-8"))
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = data.draw(ODD_VALUES)
    target.write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    try:
        load_knowledge(root / "config.yaml", root / "faq", dt.date(2027, 1, 1))
    except ContentError as exc:
        assert all(p.line >= 1 for p in exc.problems)
