"""bot.yamlio: libyaml reads good files fast, and what it reads is exactly what the line-reporting
pure-Python loader reads (values, LineDict/LineList types and line numbers)."""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA, ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import yamlio
from bot.yamlio import YamlProblem, file_signature, parse_yaml, read_yaml

FILES = sorted([*ROOT.glob("faq/*.yaml"), ROOT / "config.yaml", ROOT / "bot/data/lexicon.yaml", *DATA.glob("*.yaml")])


def _same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, yamlio.LineDict):
        assert (a.line, a.key_lines, dict(a.spans)) == (b.line, b.key_lines, dict(b.spans))
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, yamlio.LineList):
        assert (a.line, a.item_lines, dict(a.spans)) == (b.line, b.item_lines, dict(b.spans))
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


def test_a_syntax_error_is_explained_in_plain_words_at_its_line() -> None:
    with pytest.raises(YamlProblem) as caught:
        parse_yaml("a: 1\nb: c: d\n", "f.yaml")
    assert caught.value.line == 2
    assert "the text after 'b:' holds ': '" in caught.value.message
    assert "quotes" in caught.value.message


# ---------------------------------------------------------------- syntax errors in plain words

# (a section of a FAQ file with one mistake, the line it is on, what the message must say). Each is a
# mistake staff make in a text editor; PyYAML reports most of them in parser words, often on a later line.
ENTRY = """\
entries:
  - id: office-hours
    reviewed: 2026-01-15
    ru:
      checked: draft
      title: Часы работы
      questions:
        - часы работы офиса
        - где офис увкб
      answer: |
        Офис открыт {office_hours}.
        Телефоны: {office_phones}.
    en:
      checked: draft
      title: Opening hours
      questions:
        - opening hours
        - where is the office
      answer: |
        The office is open {office_hours}.
"""


def _break(line: int, new: str) -> str:
    lines = ENTRY.split("\n")
    lines[line - 1] = new
    return "\n".join(lines)


SYNTAX_CASES = [
    # a key indented further than the key above it: PyYAML says "mapping values are not allowed here"
    ("over-indented key", _break(6, "        title: Часы работы"), 6, "line 6 is indented more than line 5"),
    # the same after a list: PyYAML blames the next key ("expected <block end>")
    ("over-indented list key", _break(13, "     en:"), 13, "line 13 is indented"),
    ("under-indented key", _break(7, "    questions:"), 7, "line 7 is indented less than line 6"),
    ("tab", _break(14, "\t  checked: draft"), 14, "tab character where YAML expects spaces: use spaces, not tabs"),
    ("colon in a title", _break(15, "      title: Hours: when we are open"), 15, "the text after 'title:' holds ': '"),
    ("missing colon", _break(5, "      checked draft"), 5, "a ':' is missing after 'checked'"),
    # an unclosed quote runs on to the next quote, lines later, where PyYAML reports it
    ("unclosed quote", _break(6, '      title: "Часы работы'), 6, 'the quote (") opened on this line is never closed'),
    ("quote inside quotes", _break(15, "      title: 'UNHCR's hours'"), 15, "the text in quotes ends at the second '"),
    (
        "placeholder unquoted",
        _break(3, "    link: {help_site} page"),
        3,
        "a text that starts with '{' must be in quotes",
    ),
    # a text line of a '|' answer indented less than the first: the answer ends there
    (
        "under-indented text",
        _break(12, "      Телефоны: {office_phones}."),
        12,
        "line 12 is indented less than line 11",
    ),
    (
        "first text line over-indented",
        _break(11, "          Офис открыт {office_hours}."),
        11,
        "line 11 is indented more",
    ),
    ("text after |", _break(10, "      answer: | Офис открыт"), 10, "nothing but a comment may follow '|'"),
    ("star", _break(9, "        - *важно*"), 9, "a text cannot start with '*' unless it is in quotes"),
    ("list item among keys", _break(7, "      - где офис"), 7, ""),
]


@pytest.mark.parametrize(("case", "text", "line", "message"), SYNTAX_CASES, ids=[c[0] for c in SYNTAX_CASES])
def test_a_syntax_error_is_explained_at_the_culprits_line(case: str, text: str, line: int, message: str) -> None:
    with pytest.raises(YamlProblem) as caught:
        parse_yaml(text, "faq/x.yaml")
    assert caught.value.line == line, caught.value
    assert message in caught.value.message, caught.value.message
    assert "YAML syntax:" not in caught.value.message  # no parser words left
    assert f"line {line}" in caught.value.message


def test_one_slipped_line_in_a_real_faq_file_is_named_nearly_always() -> None:
    """Move one line of a real FAQ file by a space or two, 80 times: `check` must name that very line
    (PyYAML alone names it about two times in three)."""
    rng = random.Random(15)
    lines = (ROOT / "faq" / "help.yaml").read_text(encoding="utf-8").split("\n")
    structural = [i for i, t in enumerate(lines) if t.strip() and not t.lstrip().startswith("#")]
    named = errors = 0
    for _ in range(80):
        i = rng.choice(structural)
        width = len(lines[i]) - len(lines[i].lstrip(" "))
        shift = rng.choice([-2, -1, 1, 2])
        if width + shift < 0:
            continue
        broken = lines.copy()
        broken[i] = " " * (width + shift) + lines[i].lstrip(" ")
        try:
            parse_yaml("\n".join(broken), "faq/help.yaml")
        except YamlProblem as exc:
            errors += 1
            named += exc.line == i + 1
    assert errors >= 30
    assert named >= errors * 0.95, (named, errors)


def test_the_control_character_yaml_refuses_is_named_at_its_line() -> None:
    with pytest.raises(YamlProblem) as caught:
        parse_yaml("a: 1\nb: x\x07y\n", "f.yaml")
    assert caught.value.line == 2
    assert "control character (U+0007)" in caught.value.message


# ---------------------------------------------------------------- where a value sits


def test_a_literal_text_knows_the_line_of_each_of_its_characters() -> None:
    data = parse_yaml(ENTRY, "f.yaml")
    ru = data["entries"][0]["ru"]
    answer = ru["answer"]
    assert ru.value_line("answer", answer.index("{office_phones}")) == 12
    assert ru.value_line("answer", 0) == 11
    assert ru.value_line("title", 0) == 6  # one line: the key's


def test_a_plain_text_over_two_lines_is_known_as_folded() -> None:
    text = "questions:\n  - opening hours un office\n    - where is the UNHCR office\n  - hours\n"
    data = parse_yaml(text, "f.yaml")
    questions = data["questions"]
    assert questions == ["opening hours un office - where is the UNHCR office", "hours"]
    span = questions.folded(0)
    assert span is not None and (span.first, span.last) == (2, 3)
    assert questions.folded(1) is None
    quoted = parse_yaml('q: "a long\n  text"\n', "f.yaml")
    assert quoted.folded("q") is None and quoted.spans["q"].style == '"'


def test_a_folded_text_finds_a_piece_on_its_own_line() -> None:
    data = parse_yaml("a: >\n  one two\n  three {x}\n  four\n", "f.yaml")
    assert data.value_line("a", data["a"].index("{x}"), 3) == 3


# ---------------------------------------------------------------- reading files safely


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "x.yaml"
    os.mkfifo(fifo)
    result = run_capped("-c", READ, fifo)
    assert result.returncode == 0, result.stderr[-500:]
    message, signature, _ = result.stdout.splitlines()
    assert message == "this is a pipe (FIFO), not a file: only regular files are read (remove it)"
    assert signature == "<not a file"


def test_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").mkdir()
    with pytest.raises(YamlProblem, match="a folder, not a file"):
        read_yaml(tmp_path / "x.yaml")
    assert file_signature(tmp_path / "x.yaml").startswith(b"<not a file")


def run_capped(*args: str | Path, cwd: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in a child with 1 GB of memory at most and a time limit: a reader that slurps
    /dev/zero or waits on a pipe fails the test instead of taking the machine or the run with it."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))

    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=timeout,
        preexec_fn=limit,
        check=False,
    )


READ = """
import sys, tracemalloc
from pathlib import Path
from bot.yamlio import YamlProblem, file_signature, read_yaml
tracemalloc.start()
try:
    read_yaml(Path(sys.argv[1]))
except YamlProblem as exc:
    print(exc.message)
print(file_signature(Path(sys.argv[1]))[:11].decode())
print(tracemalloc.get_traced_memory()[1])
"""


def test_dev_zero_linked_as_yaml_is_refused_from_its_type(tmp_path: Path) -> None:
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    result = run_capped("-c", READ, link)
    assert result.returncode == 0, result.stderr[-500:]
    message, signature, _ = result.stdout.splitlines()
    assert message == "this is a device, not a file: only regular files are read (remove it)"
    assert signature == "<not a file"


def test_a_huge_sparse_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(1_500_000_000)  # 1.5 GB that takes no disk
    result = run_capped("-c", READ, big)
    assert result.returncode == 0, result.stderr[-500:]
    message, signature, peak = result.stdout.splitlines()
    assert message == "file is too large (1,500,000,000 bytes; the limit is 2,000,000)"
    assert signature == "<too large "
    assert int(peak) < 10_000_000


def test_a_file_that_grows_past_the_cap_while_read_is_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A size that lies (a file still being written, /proc-like files): never more than the cap is read."""
    path = tmp_path / "x.yaml"
    path.write_bytes(b"a: 1\n" + b"# pad\n" * (yamlio.MAX_FILE_BYTES // 6 + 10))
    real_fstat = os.fstat

    def lying_fstat(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 5, *st[7:10]))

    monkeypatch.setattr(os, "fstat", lying_fstat)
    with pytest.raises(YamlProblem, match="more than 2,000,000 bytes"):
        read_yaml(path)
    assert file_signature(path).startswith(b"<too large")


def test_the_signature_changes_with_the_content(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("a: 1\n", encoding="utf-8")
    before = file_signature(path)
    path.write_text("a: 2\n", encoding="utf-8")
    assert file_signature(path) != before
    assert file_signature(tmp_path / "missing.yaml").startswith(b"<unreadable")


PIECES = [*list("ab: -\t\n'\"#|>[]{}&*!%@`,?\\0é"), "  ", "\n  ", "\n- ", "ru: ", "- id: x\n", "answer: |\n"]
YAMLISH = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=400)
@given(YAMLISH)
def test_any_text_parses_or_is_one_problem_with_a_line(text: str) -> None:
    """Whatever staff type, reading it gives data or one YamlProblem at a line of the file: the
    explanation of an error never raises anything else."""
    try:
        parse_yaml(text, "f.yaml")
    except YamlProblem as exc:
        assert 1 <= exc.line <= text.count("\n") + 2
        assert exc.message
