"""Teaching the bot a phrasing it missed: faq/taught.yaml checked like every FAQ file and merged into
its entries' questions, `python -m bot teach` (list, teach with a confirm, new topic, ignore, merge)
on real SQLite files and real copies of the content, through the real CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import sqlite3
from pathlib import Path

import pytest
from conftest import ContentCopy, RunCli

from bot.content import load_knowledge
from bot.dialogue import ANSWER, reply_to_text
from bot.privacy import pseudonym
from bot.problems import ContentError
from bot.review import Question, teach_problem
from bot.storage import Storage
from bot.taught import HEADER, Taught, clean_text, phrasing_key, render_file, with_item, yaml_scalar

MISSED = "можно ли открыть счет в банке без паспорта"
WEATHER = "какая погода в алматы завтра"
TODAY = dt.date.today()


def write_taught(copy: ContentCopy, body: str) -> Path:
    path = copy.faq / "taught.yaml"
    path.write_text(HEADER + "taught:\n" + body, encoding="utf-8")
    return path


def problems_of(copy: ContentCopy) -> list[str]:
    try:
        loaded = load_knowledge(copy.config, None, TODAY)
    except ContentError as exc:
        return [str(p) for p in exc.problems]
    return [str(w) for w in loaded.warnings if "taught.yaml" in str(w)]


def item(entry: str = "lost-documents", lang: str = "ru", text: str = MISSED, date: str = "2026-12-01") -> str:
    return f"  - entry: {entry}\n    lang: {lang}\n    text: {text}\n    date: {date}\n    by: tg-0a1b2c3d4e\n"


def test_a_taught_phrasing_joins_its_entry_and_is_answered_directly(content_copy: ContentCopy) -> None:
    before = load_knowledge(content_copy.config, None, TODAY).knowledge
    assert reply_to_text(before, MISSED, "ru").kind != ANSWER
    write_taught(content_copy, item())
    after = load_knowledge(content_copy.config, None, TODAY).knowledge
    assert after.faq.entries["lost-documents"].langs["ru"].questions[-1] == MISSED
    assert [t.entry_id for t in after.faq.taught] == ["lost-documents"]
    reply = reply_to_text(after, MISSED, "ru")
    assert (reply.kind, reply.entry_id) == (ANSWER, "lost-documents")
    assert problems_of(content_copy) == []


# Each broken sample: (what the item says, the line of the problem in taught.yaml, words of the message)
HEAD = HEADER.count("\n") + 1  # the `taught:` line; the first item starts on the next one
BROKEN = {
    "unknown entry, with the nearest id": (item(entry="lost-document"), HEAD + 1, "did you mean 'lost-documents'"),
    "unknown language": (item(lang="de"), HEAD + 2, "lang 'de' must be one of ru, kk, en"),
    "a phone number": (item(text="позвоните +7 701 123 45 67"), HEAD + 3, "only scrubbed text can be taught"),
    "a date in the future": (item(date="2999-01-01"), HEAD + 4, "not in the future"),
    "a misspelt key": (item().replace("lang:", "lnag:"), HEAD + 2, "unknown field 'lnag' (did you mean 'lang'?)"),
    "another entry's question": (item(text="кто такой беженец"), HEAD + 1, "already a question of entry"),
    "a bad name": (item().replace("tg-0a1b2c3d4e", "'Иван Петров'"), HEAD + 5, "'by' must be a short name"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_check_refuses_a_broken_taught_phrasing_at_its_line(content_copy: ContentCopy, case: str) -> None:
    body, line, words = BROKEN[case]
    write_taught(content_copy, body)
    found = problems_of(content_copy)
    assert any(f"taught.yaml:{line}: " in p and words in p for p in found), found


def test_check_warns_about_a_phrasing_its_entry_already_has(content_copy: ContentCopy, cli: RunCli) -> None:
    write_taught(content_copy, item(entry="refugee-definition", text="кто такой беженец"))
    result = cli("check", "--config", content_copy.config)
    assert result.returncode == 0, result.stdout
    assert f"taught.yaml:{HEAD + 1}: warning: 'кто такой беженец' is already a question of entry" in result.stdout


def test_a_section_file_that_failed_to_load_brings_no_follow_on_errors(content_copy: ContentCopy) -> None:
    write_taught(content_copy, item())
    statelessness = content_copy.faq / "statelessness.yaml"
    statelessness.write_text(statelessness.read_text("utf-8") + "\n  - id: [broken\n", "utf-8")
    found = problems_of(content_copy)
    assert found and not any("taught.yaml" in p for p in found), found


def test_writing_keeps_the_file_and_quotes_what_yaml_needs() -> None:
    assert yaml_scalar("как подать") == "как подать"
    assert yaml_scalar("a: b") == "'a: b'"
    assert yaml_scalar("- dash") == "'- dash'"
    first = Taught("asylum-apply", "ru", "a: b #c", TODAY, "cli")
    text = with_item(render_file([]) + "# a comment staff wrote\n", first)
    assert "taught: []" not in text and "# a comment staff wrote" in text
    import yaml

    assert yaml.safe_load(text)["taught"][0]["text"] == "a: b #c"
    assert with_item(None, first) == render_file([first])


def test_only_scrubbed_new_text_can_be_taught(content_copy: ContentCopy) -> None:
    k = load_knowledge(content_copy.config, None, TODAY).knowledge
    assert teach_problem(k, "lost-documents", MISSED) is None
    assert "scrubbed" in (teach_problem(k, "lost-documents", "мой номер 87011234567") or "")
    assert "already a question of entry 'refugee-definition'" in (
        teach_problem(k, "contacts", "кто такой беженец") or ""
    )
    assert "filler words" in (teach_problem(k, "contacts", "как и где") or "")
    assert "does not exist" in (teach_problem(k, "no-such-entry", MISSED) or "")
    assert phrasing_key("Кто  такой, беженец?") == phrasing_key("кто такой беженец")
    assert clean_text("нужна справка,  мой номер [phone]\n") == "нужна справка, мой номер"  # tags left out
    assert "[phone]" in (teach_problem(k, "contacts", "мой номер [phone]") or "")
    _ = Question  # the review's unit of work; the CLI test below goes through it end to end


# ---------------------------------------------------------------- the command line


async def _fill(db: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    pid = pseudonym(1, b"teach-test-key")
    async with await Storage.open(db) as s:
        await s.record_unanswered(pid, "ru", "fallback", WEATHER, [], now)
        await s.record_unanswered(pid, "ru", "fallback", WEATHER, [], now)
        await s.record_unanswered(pid, "en", "fallback", MISSED, [], now)  # a Russian text, English reply
        await s.record_unanswered(pid, "ru", "fallback", "нужна справка, мой номер +7 701 123 45 67", [], now)


@pytest.fixture
def filled(tmp_path: Path, content_copy: ContentCopy) -> Path:
    db = tmp_path / "komek.sqlite3"
    asyncio.run(_fill(db))
    return db


def _ids(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {text: qid for qid, text in conn.execute("SELECT id, text FROM unanswered ORDER BY id")}


def test_teach_lists_confirms_writes_and_the_bot_answers(cli: RunCli, content_copy: ContentCopy, filled: Path) -> None:
    cfg = ("--config", content_copy.config, "--db", filled)
    listed = cli("teach", *cfg)
    assert listed.returncode == 0, listed.stderr
    ids = _ids(filled)
    out = listed.stdout
    assert f"#{ids[MISSED]} · " in out and "Asia/Almaty" in out and "asked 2×" in out
    assert "[phone]" in out and "701" not in out  # stored scrubbed, shown scrubbed
    assert "1. lost-documents" in out

    refused = cli("teach", ids[MISSED], "lost-documents", *cfg, stdin="n\n")
    assert refused.returncode == 1 and "Nothing added" in refused.stdout
    assert f"exactly:\n“{MISSED}”" in refused.stdout and "Language: ru" in refused.stdout
    assert MISSED not in (content_copy.faq / "taught.yaml").read_text("utf-8")

    taught = cli("teach", ids[MISSED], "lost-documents", "--by", "aa", *cfg, stdin="y\n")
    assert taught.returncode == 0, taught.stderr
    text = (content_copy.faq / "taught.yaml").read_text("utf-8")
    assert f"text: {MISSED}" in text and "entry: lost-documents" in text and "by: aa" in text
    asked = cli("ask", "--json", "--config", content_copy.config, MISSED)  # loads (so checks) the FAQ too
    assert '"kind": "answer"' in asked.stdout and '"id": "lost-documents"' in asked.stdout

    assert cli("teach", ids[WEATHER], "--new-topic", *cfg).returncode == 0
    again = cli("teach", *cfg).stdout
    assert "✓ taught to lost-documents (ru) by aa" in again and "🆕 new topic by cli" in again
    twice = cli("teach", ids[MISSED], "contacts", "--yes", *cfg)
    assert twice.returncode == 1 and "Already handled" in twice.stdout
    with sqlite3.connect(filled) as conn:
        rows = conn.execute("SELECT action, entry_id, lang FROM teaching ORDER BY id").fetchall()
    assert rows == [("taught", "lost-documents", "ru"), ("new_topic", None, None)]


def test_teach_usage_errors(cli: RunCli, content_copy: ContentCopy, filled: Path) -> None:
    cfg = ("--config", content_copy.config, "--db", filled)
    assert cli("teach", "--new-topic", *cfg).returncode == 2
    assert cli("teach", "1", *cfg).returncode == 2
    assert cli("teach", "999", "contacts", *cfg).returncode == 1
    assert cli("teach", "1", "contacts", "--by", "no spaces please", *cfg).returncode == 2


def test_merge_moves_taught_phrasings_into_the_section_files(cli: RunCli, content_copy: ContentCopy) -> None:
    second = "лишили гражданства что делать"
    write_taught(
        content_copy,
        item()
        + item(entry="lost-documents", text=second)
        + item(entry="contacts", lang="en", text="where is your office in astana"),
    )
    before = {p.name: p.read_text("utf-8") for p in content_copy.faq.glob("*.yaml")}
    # only the content is compared: no ranker needed ("later" never trains), 20 s less of the run
    k_before = load_knowledge(content_copy.config, None, TODAY, train="later").knowledge
    result = cli("teach", "--merge", "--yes", "--config", content_copy.config)
    assert result.returncode == 0, result.stdout + result.stderr
    after = {p.name: p.read_text("utf-8") for p in content_copy.faq.glob("*.yaml")}
    assert after["taught.yaml"].endswith("taught: []\n") and after["taught.yaml"].startswith(HEADER)
    added = {
        name: [line for line in difflib.ndiff(before[name].splitlines(), after[name].splitlines()) if line[:1] in "+-"]
        for name in before
        if name != "taught.yaml" and before[name] != after[name]
    }
    # only new lines, each indented like the questions around it, nothing else touched
    assert added == {
        "statelessness.yaml": [f"+         - {MISSED}", f"+         - {second}"],
        "help.yaml": ["+         - where is your office in astana"],
    }, added
    k_after = load_knowledge(content_copy.config, None, TODAY, train="later").knowledge
    assert k_after.faq.taught == ()
    for entry_id, entry in k_before.faq.entries.items():
        for lang, block in entry.langs.items():
            assert k_after.faq.entries[entry_id].langs[lang].questions == block.questions
    assert cli("teach", "--merge", "--config", content_copy.config).stdout.startswith("Nothing to merge")


async def test_storage_keeps_decisions_without_text_or_user(tmp_path: Path) -> None:
    db = tmp_path / "komek.sqlite3"
    now = dt.datetime.now(dt.UTC)
    pid = pseudonym(7, b"teach-test-key")
    async with await Storage.open(db) as s:
        await s.record_unanswered(pid, "ru", "fallback", MISSED, [], now)
        [(qid, *_)] = await s.recent_unanswered()
        with pytest.raises(ValueError):
            await s.record_teaching(qid, "deleted", None, None, "cli", now)
        await s.record_teaching(qid, "taught", "lost-documents", "ru", "cli", now)
        assert [d[2:] for d in await s.teaching_decisions()] == [("taught", "lost-documents", "ru", "cli", MISSED)]
        await s.forget_user(pid)  # the question goes with /forget; the decision stays, without it
        assert [d[-1] for d in await s.teaching_decisions()] == [None]
        assert await s.unanswered_by_id(qid) is None
    with sqlite3.connect(db) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(teaching)")}
    assert "pid" not in columns and "text" not in columns
