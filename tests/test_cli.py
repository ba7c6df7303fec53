"""`python -m bot ...`: the staff command line, run as a real child process on the real content."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from conftest import RunCli

from bot.cli import COMMANDS, build_parser, main
from bot.dialogue import Knowledge

JSON_KEYS = {"crisis", "query", "id", "score", "lang", "kind", "suggestions", "urgent", "text"}


def test_ask_json_reads_one_question_per_stdin_line(cli: RunCli) -> None:
    questions = ["как подать на убежище", "муж бьет меня", "привет", "", "какая погода завтра", "lost my passport"]
    result = cli("ask", "--json", stdin="\n".join(questions) + "\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(questions)
    replies = [json.loads(line) for line in lines]
    for question, reply in zip(questions, replies, strict=True):
        assert set(reply) == JSON_KEYS
        assert reply["query"] == question
        assert isinstance(reply["score"], float | int) and 0 <= reply["score"] <= 1
        assert reply["lang"] in ("ru", "kk", "en")
        assert isinstance(reply["suggestions"], list) and isinstance(reply["urgent"], bool)
        assert reply["text"]
    apply, beaten, hello, empty, weather, passport = replies
    assert (apply["kind"], apply["id"], apply["lang"]) == ("answer", "asylum-apply", "ru")
    assert (beaten["kind"], beaten["id"], beaten["urgent"]) == ("urgent", "gbv", True)
    assert hello["kind"] == "smalltalk" and hello["id"] is None
    assert empty["kind"] == "fallback"
    assert weather["kind"] == "fallback"
    assert (passport["id"], passport["lang"]) == ("lost-documents", "en")


def test_ask_json_with_a_question_argument(cli: RunCli) -> None:
    result = cli("ask", "--json", "--lang", "kk", "как подать на убежище")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    reply = json.loads(line)
    assert (reply["id"], reply["lang"]) == ("asylum-apply", "kk")


def test_ask_prints_the_reply_text(cli: RunCli) -> None:
    result = cli("ask", "как", "подать", "на", "убежище")
    assert result.returncode == 0, result.stderr
    first, *rest = result.stdout.splitlines()
    assert first.startswith("[answer id=asylum-apply score=")
    text = "\n".join(rest)
    assert "<b>" not in text  # Telegram HTML shown as plain text
    assert "https://help.unhcr.org/" in text
    assert "[1] " in text  # buttons as numbered choices


def test_ask_without_a_question_is_a_usage_error(cli: RunCli) -> None:
    result = cli("ask")
    assert result.returncode == 2
    assert "give a question" in result.stderr


def test_ask_with_an_unknown_language(cli: RunCli) -> None:
    result = cli("ask", "--lang", "de", "hello")
    assert result.returncode == 2
    assert "--lang must be one of ru, kk, en" in result.stderr


def test_export_json_lists_every_entry(cli: RunCli, knowledge: Knowledge) -> None:
    result = cli("export", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    entries = data["entries"]
    assert len(entries) == len({e["id"] for e in entries}) == len(knowledge.faq.entries) >= 34
    assert [e["id"] for e in entries] == list(knowledge.faq.entries)
    for e in entries:
        assert set(e["languages"]) == {"ru", "kk", "en"}
        for block in e["languages"].values():
            assert block["title"] and block["answer"] and len(block["questions"]) >= 8
        assert e["sources"] and e["reviewed"]
    sections = {e["section"] for e in entries}
    assert {"asylum", "help", "statelessness", "about"} <= sections


EVAL_SET = """\
# a small labelled set: in-scope messages with their entry, out-of-scope ones with null
- {q: "как подать на убежище", expect: asylum-apply, lang: ru}
- {q: "потерял паспорт", expect: lost-documents, lang: ru}
- {q: "how to apply for asylum", expect: asylum-apply, lang: en}
- {q: "азаматтык алу", expect: citizenship, lang: kk}
- {q: "какая погода завтра", expect: null, lang: ru}
- {q: "рецепт борща", expect: null, lang: ru, kind: plain}
"""


def test_eval_prints_every_named_metric_by_language_and_kind(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "eval.yaml"
    path.write_text(EVAL_SET.replace("lang: ru}", "lang: ru, kind: short}", 1), "utf-8")
    result = cli("eval", path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{path}: 4 in-scope, 2 out-of-scope messages (combined)" in out
    for name in ("strict top-1", "shown-first", "top-3", "precision", "rejection", "lang ru", "kind short"):
        assert name in out
    report = json.loads(cli("eval", path, "--json").stdout)
    overall = report["overall"]
    assert (overall["in_scope"], overall["off_scope"]) == (4, 2)
    assert 0 <= overall["strict_top1"] <= overall["shown_first"] <= overall["top3"] <= 1
    assert overall["rejection"] == 1.0
    assert set(report["per_lang"]) == {"ru", "en", "kk"}
    assert set(report["per_kind"]) == {"short", "plain"}
    assert report["per_kind"]["short"]["in_scope"] == 1


@pytest.mark.parametrize("engine", ["matcher", "ranker"])
def test_eval_compares_with_either_engine_alone(cli: RunCli, tmp_path: Path, engine: str) -> None:
    path = tmp_path / "eval.yaml"
    path.write_text(EVAL_SET, "utf-8")
    result = cli("eval", path, "--engine", engine, "--misses", "0")
    assert result.returncode == 0, result.stderr
    assert f"({engine})" in result.stdout


def test_eval_floors_decide_the_exit_code(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "eval.yaml"
    path.write_text(EVAL_SET, "utf-8")
    assert cli("eval", path, "--min-top1", "0.0", "--misses", "0").returncode == 0
    assert cli("eval", path, "--min-top1", "1.01", "--misses", "0").returncode == 1


def test_eval_rejects_unknown_ids_and_bad_files(cli: RunCli, tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text('- {q: "x", expect: no-such-entry}\n', "utf-8")
    result = cli("eval", unknown)
    assert result.returncode == 2
    assert "expected ids not in the FAQ: no-such-entry" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("q: not a list\n", "utf-8")
    assert cli("eval", bad).returncode == 2


def test_chat_shows_choices_and_answers(cli: RunCli) -> None:
    result = cli("chat", stdin="1\n/menu\nкак подать на убежище\n/quit\n", timeout=30)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # the language picker, as numbered choices
    assert "[1] Русский" in out and "[2] Қазақша" in out and "[3] English" in out
    # "1" chose Russian: the greeting and the menu's sections
    assert "Язык: русский." in out
    assert "[2] Убежище и беженцы" in out
    # the answer, with its buttons
    assert "управление занятости" in out
    assert "👍 Ответ помог?" in out
    assert "Traceback" not in result.stderr


def test_chat_ends_on_end_of_input(cli: RunCli) -> None:
    result = cli("chat", "--lang", "en", stdin="hello\n", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Hello! Write your question" in result.stdout


# ---------------------------------------------------------------- help (every command has it)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_in_the_parser() -> None:
    assert set(subcommands()) == set(COMMANDS)


def test_every_command_has_a_help_line() -> None:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    assert set(helps) == set(COMMANDS)
    assert all(h and len(h) > 10 for h in helps.values()), helps


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m bot {command}")
    assert "--config" in out and "--faq" in out


def test_top_level_help_lists_every_command(cli: RunCli) -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


def test_no_command_is_a_usage_error(cli: RunCli) -> None:
    result = cli()
    assert result.returncode == 2
    assert "usage:" in result.stderr
