"""`python -m bot chat --db FILE` records as the live bot does, so the report, /stats, /unanswered and
teaching can be tried offline; and the chat's newcomer details (banner, --lang)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from conftest import ContentCopy, RunCli

MISSED = "где сделать прививку собаке"  # nothing in the FAQ is near it
WEATHER = "какая погода в алматы завтра"


def test_chat_records_like_the_bot_and_staff_tools_read_it(
    cli: RunCli, content_copy: ContentCopy, tmp_path: Path
) -> None:
    db = tmp_path / "offline.sqlite3"
    cfg = ("--config", content_copy.config)
    session = f"1\nкак подать на убежище\n{WEATHER}\n{MISSED} +7 701 123 45 67\n/contacts\n/stats\n/unanswered\n/quit\n"
    result = cli("chat", "--db", db, *cfg, stdin=session, timeout=30)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Recording to {db}" in out
    assert "Today: 3 questions; answered 33%, did-you-mean 0%, fallback 67%" in out  # /stats, as admins see it
    assert "Asia/Almaty" in out and f"“{MISSED} [phone]”" in out  # /unanswered, scrubbed

    with sqlite3.connect(db) as conn:
        events = conn.execute("SELECT kind, entry_id, lang FROM events ORDER BY id").fetchall()
        unanswered = [r[0] for r in conn.execute("SELECT text FROM unanswered ORDER BY id")]
        [(pid, language)] = conn.execute("SELECT pid, language FROM users").fetchall()
    assert events == [
        ("btn_greeting", None, "ru"),
        ("answer", "asylum-apply", "ru"),
        ("fallback", None, "ru"),
        ("fallback", None, "ru"),
        ("cmd_contacts", None, "ru"),
    ]
    assert unanswered == [WEATHER, f"{MISSED} [phone]"]  # scrubbed as the bot scrubs
    assert re.fullmatch(r"[0-9a-f]{32}", pid) and language == "ru"
    assert b"701 123" not in db.read_bytes()

    report = cli("report", "--db", db, *cfg)
    assert report.returncode == 0, report.stderr
    gaps, off = report.stdout.split("Possible gaps")[1].split("Off-topic")
    assert MISSED in gaps and WEATHER in off

    listed = cli("teach", "--db", db, *cfg)
    assert "#2 · " in listed.stdout and "   1. " in listed.stdout  # the closest entries to teach it to

    # the language choice is remembered, as the bot remembers it: no picker the second time
    again = cli("chat", "--db", db, *cfg, stdin="/quit\n", timeout=30)
    assert "Choose your language" not in again.stdout and "Здравствуйте" in again.stdout


def test_chat_banner_lists_the_commands_and_an_unknown_language_is_refused(cli: RunCli) -> None:
    result = cli("chat", "--lang", "en", stdin="/quit\n", timeout=30)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    for command in ("/menu", "/contacts", "/language", "/quit"):
        assert command in first
    refused = cli("chat", "--lang", "xx")
    assert refused.returncode == 2 and "--lang must be one of ru, kk, en" in refused.stderr
    assert "Traceback" not in refused.stderr
