"""What a newcomer meets first: every `python -m bot` command in the READMEs parses as written, `run`
with Telegram unreachable says so in one line and retries, `eval` floors say why they failed, and
`make clean` removes what make and the tools it runs leave behind."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, RunCli, child_env

from bot.cli import build_parser

READMES = [ROOT / "README.md", ROOT / "faq" / "README.md"]
COMMAND_RE = re.compile(r"(?:\.venv/bin/)?python -m bot (?:[^`\n|]*)")


def readme_commands() -> list[tuple[str, str]]:
    found = []
    for readme in READMES:
        for match in COMMAND_RE.finditer(readme.read_text("utf-8")):
            text = match.group(0).split("  #")[0].strip().rstrip(".,;:)")
            found.append((readme.name, text))
    return found


def test_the_readmes_show_commands_as_run_from_a_fresh_clone() -> None:
    """`.venv/bin/python -m bot` (what make creates), or plain `python` where activating is explained."""
    bare = [
        (name, cmd)
        for name, cmd in readme_commands()
        if not cmd.startswith(".venv/bin/python") and cmd.split("python -m bot", 1)[1].strip() not in ("…", "")
    ]
    assert bare == [], "write .venv/bin/python -m bot …: " + repr(bare)


@pytest.mark.parametrize(("readme", "command"), readme_commands())
def test_every_readme_command_parses(readme: str, command: str) -> None:
    args = shlex.split(command.split("python -m bot", 1)[1])
    args = [a for a in args if a not in ("…", "...")]
    if not args:
        return
    try:
        build_parser().parse_args(args)
    except SystemExit as exc:  # argparse: an unknown option or a missing argument
        pytest.fail(f"{readme}: `{command}` does not parse (exit {exc.code})")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the with-block ends: nothing listens there


def test_run_with_telegram_unreachable_says_so_in_one_line_and_retries(tmp_path: Path) -> None:
    env = child_env()
    env.update(
        TELEGRAM_BOT_TOKEN="123456:unreachable-test",
        KOMEK_SECRET="a-secret-of-at-least-16-chars",
        KOMEK_DB=str(tmp_path / "komek.sqlite3"),
        TELEGRAM_BASE_URL=f"http://127.0.0.1:{_closed_port()}/bot",
        PYTHONPATH=str(ROOT),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True, encoding="utf-8"
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while sum("Telegram cannot be reached" in line for line in lines) < 2 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
        assert proc.poll() is None, "the bot gave up instead of retrying"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    tries = [line for line in lines if "Telegram cannot be reached" in line]
    assert len(tries) == 2, "".join(lines)
    assert "trying again in 2 s" in tries[0] and "trying again in 4 s" in tries[1]
    assert not any("Traceback" in line for line in lines), "".join(lines)
    assert "unreachable-test" not in "".join(lines)  # the token is never logged


def test_eval_says_why_a_floor_failed(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "eval.yaml"
    path.write_text('- {q: "как подать на убежище", expect: asylum-apply}\n- {q: "погода завтра", expect: null}\n')
    result = cli("eval", path, "--min-top1", "1.01", "--min-rejection", "1.5", "--misses", "0")
    assert result.returncode == 1
    assert f"FAIL: {path}: shown-first 1.0 is below --min-top1 1.01" in result.stderr
    assert "off-topic rejection 1.0 is below --min-rejection 1.5" in result.stderr
    passed = cli("eval", path, "--min-top1", "0.5", "--misses", "0")
    assert passed.returncode == 0 and "FAIL" not in passed.stderr


def test_make_clean_removes_what_make_and_its_tools_leave() -> None:
    """Everything .gitignore lists as made by the tools (not the bot's database) is in the clean recipe."""
    makefile = (ROOT / "Makefile").read_text("utf-8")
    recipe = makefile.split("\nclean:", 1)[1].split("\n\n", 1)[0].replace("$(VENV)", ".venv")
    ignored = [line.strip() for line in (ROOT / ".gitignore").read_text("utf-8").splitlines() if line.strip()]
    kept_on_purpose = {"*.sqlite3", "*.sqlite3-*"}  # the bot's data: make clean never deletes people's records
    for pattern in ignored:
        if pattern in kept_on_purpose:
            continue
        name = pattern.rstrip("/")
        assert name in recipe, f"make clean leaves {pattern} behind"
