"""`python -m bot report` end to end: a real SQLite file written through Storage, the real CLI, the
real FAQ and matcher; the HTML parsed with html.parser, the CSV with csv, the text read as text."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import RunCli

from bot.dialogue import Knowledge
from bot.privacy import pseudonym
from bot.report import Event, Unanswered, cluster, compute, topic_key
from bot.storage import Storage

KEY = b"report-test-key"
TZ = ZoneInfo("Asia/Almaty")
USERS = [pseudonym(1000 + i, KEY) for i in range(6)]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
EVIL = '<script>alert("x")</script> & <b>как получить визу</b>'
NEW_TOPIC = "нужна справка о несудимости для работы"


def local_noon(days_ago: int) -> dt.datetime:
    """Noon, Almaty time, `days_ago` days before today: safely inside that local day."""
    today = dt.datetime.now(TZ).date()
    return dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(12), tzinfo=TZ)


def day(days_ago: int) -> str:
    return (dt.datetime.now(TZ).date() - dt.timedelta(days=days_ago)).isoformat()


# What the DB holds, and so what the report must say:
#   today:    ru answer asylum-apply ×3, ru fallback ×1, en did_you_mean ×1, kk urgent ×1  (6 questions)
#   1 day ago: en answer asylum-apply ×1, en fallback ×1                                    (2 questions)
#   3 days ago: ru answer ×2 (asylum-apply, then another entry)                              (2 questions)
#   40 days ago: ru answer ×5 — outside --days 30, must not count
#   feedback: asylum-apply 👍 2 👎 1 (today), 👍 1 (3 days ago); 40 days ago 👎 ×4 (outside)
async def build_db(path: Path, other_entry: str, urgent_entry: str) -> None:
    async with await Storage.open(path) as s:
        u = USERS
        for i in range(3):
            await s.record_event(u[i], "answer", "asylum-apply", 0.9, "ru", local_noon(0))
        await s.record_event(u[0], "fallback", None, 0.1, "ru", local_noon(0))
        await s.record_event(u[1], "did_you_mean", None, 0.5, "en", local_noon(0))
        await s.record_event(u[2], "urgent", urgent_entry, 0.8, "kk", local_noon(0), crisis="medical")
        await s.record_event(u[3], "menu", None, 0.0, "ru", local_noon(0))  # not a question
        await s.record_event(u[3], "answer", "asylum-apply", 0.9, "en", local_noon(1))
        await s.record_event(u[3], "fallback", None, 0.2, "en", local_noon(1))
        await s.record_event(u[4], "answer", "asylum-apply", 0.9, "ru", local_noon(3))
        await s.record_event(u[4], "answer", other_entry, 0.9, "ru", local_noon(3))
        for _ in range(5):
            await s.record_event(u[5], "answer", other_entry, 0.9, "ru", local_noon(40))

        await s.record_feedback(u[0], "asylum-apply", True, local_noon(0))
        await s.record_feedback(u[1], "asylum-apply", True, local_noon(0))
        await s.record_feedback(u[2], "asylum-apply", False, local_noon(0))
        await s.record_feedback(u[4], "asylum-apply", True, local_noon(3))
        for _ in range(4):
            await s.record_feedback(u[5], other_entry, False, local_noon(40))

        weather = ["какая погода в алматы завтра", "погода в алматы", "погода алматы завтра"]
        for text in weather:
            await s.record_unanswered(u[0], "ru", "fallback", text, [], local_noon(0))
        await s.record_unanswered(u[1], "ru", "fallback", "погода в алматы", [], local_noon(1))
        renew = "where can I renew my refugee certificate"
        await s.record_unanswered(u[1], "en", "did_you_mean", renew, [], local_noon(1))
        await s.record_unanswered(u[2], "ru", "fallback", EVIL, [], local_noon(0))
        await s.record_unanswered(u[2], "ru", "fallback", "позвоните мне +7 701 123 45 67", [], local_noon(0))
        await s.record_unanswered(u[5], "ru", "fallback", "old question outside the period", [], local_noon(40))
        await s.record_unanswered(u[3], "en", "fallback", "where can I buy a pizza", [], local_noon(0))
        # decided on by staff (/unanswered or `teach`): counted as handled, not grouped again
        decided = {
            NEW_TOPIC: "new_topic",
            "asdfgh": "ignored",
            "как продлить справку беженца": "taught",
        }
        for text, action in decided.items():
            await s.record_unanswered(u[3], "ru", "fallback", text, [], local_noon(1))
            [(qid, *_)] = [r for r in await s.recent_unanswered(50) if r[4] == text]
            entry = "refugee-certificate" if action == "taught" else None
            await s.record_teaching(qid, action, entry, "ru" if entry else None, "tg-0123456789", local_noon(0))


@pytest.fixture
def db(tmp_path: Path, knowledge: Knowledge) -> tuple[Path, str, str]:
    entries = [e for e in knowledge.faq.entries if e != "asylum-apply"]
    urgent = next(e.id for e in knowledge.faq.entries.values() if e.urgent)
    path = tmp_path / "komek.sqlite3"
    asyncio.run(build_db(path, entries[0], urgent))
    return path, entries[0], urgent


class WellFormed(HTMLParser):
    """Collects every element with its attributes and fails on a tag closed out of order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.titles: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)
        self._in_title = tag == "title"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> but open: {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title:
            self.titles.append(data)


def parse_html(text: str) -> WellFormed:
    parser = WellFormed()
    parser.feed(text)
    parser.close()
    assert parser.errors == []
    assert parser.stack == [], f"never closed: {parser.stack}"
    return parser


def test_html_report_is_self_contained_well_formed_and_charts_carry_the_numbers(
    cli: RunCli, db: tuple[Path, str, str], tmp_path: Path
) -> None:
    path, _, _ = db
    out = tmp_path / "report.html"
    result = cli("report", "--db", path, "--days", "30", "--format", "html", "--out", out)
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    doc = parse_html(page)

    # self-contained: nothing is fetched (no scripts, stylesheets, images, fonts or frames)
    for tag, attrs in doc.elements:
        assert tag not in ("script", "link", "img", "iframe", "object", "embed"), tag
        assert "src" not in attrs
    assert "@import" not in page and "url(" not in page

    # user text is escaped: the question is shown, the markup in it is not live
    assert EVIL in "".join(doc.text)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "+7 701" not in page  # scrubbed before storing

    bars = [a for t, a in doc.elements if t == "rect" and a.get("class") == "bar"]
    daily = {(a["data-day"], a["data-kind"]): a for a in bars if "data-day" in a}
    today = day(0)
    assert daily[(today, "answer")]["data-count"] == "3"
    assert daily[(today, "answer")]["data-questions"] == "6"
    assert daily[(today, "answer")]["data-rate"] == "0.5000"
    assert daily[(today, "fallback")]["data-rate"] == "0.1667"
    assert daily[(today, "did_you_mean")]["data-count"] == "1"
    assert daily[(today, "urgent")]["data-count"] == "1"
    assert daily[(day(1), "answer")]["data-rate"] == "0.5000"
    assert daily[(day(1), "fallback")]["data-rate"] == "0.5000"
    assert daily[(day(3), "answer")]["data-rate"] == "1.0000"
    assert not any(d == day(2) for d, _ in daily)  # a day with no questions has no bar
    assert not any(d == day(40) for d, _ in daily)  # outside the period
    assert any("answered 3 of 6 (50%)" in t for t in doc.titles)

    votes = {(a["data-entry"], a["data-vote"]): a["data-count"] for a in bars if "data-entry" in a}
    assert votes == {("asylum-apply", "helpful"): "3", ("asylum-apply", "not_helpful"): "1"}

    total = next(a for t, a in doc.elements if a.get("id") == "total")
    assert total["data-questions"] == "10"

    # the two groups of unanswered questions: possible gaps, then off-topic (the matcher's signal)
    sections = [a.get("id") for t, a in doc.elements if t == "section"]
    assert sections == ["possible-gaps", "off-topic", "new-topics"]
    groups = [a for t, a in doc.elements if t == "div" and a.get("class") == "group"]
    gaps = [g for g in groups if g["data-category"] == "gap"]
    off = [g for g in groups if g["data-category"] == "off-topic"]
    assert [g["data-size"] for g in gaps] == ["1", "1", "1"]  # renew, the escaped one, the scrubbed phone
    assert [g["data-size"] for g in off] == ["4", "1"]  # the four weather questions together, the pizza
    assert "погод" in (off[0]["data-off-topic-words"] or "") and "pizza" in (off[1]["data-off-topic-words"] or "")
    assert groups.index(gaps[-1]) < groups.index(off[0])  # every gap comes before the off-topic ones
    section_of = _section_of_groups(page)
    assert section_of == {"possible-gaps": ["gap"] * 3, "off-topic": ["off-topic"] * 2, "new-topics": []}
    assert "погода в алматы" in page.split('id="off-topic"')[1] and "погода в алматы" not in _between(
        page, 'id="possible-gaps"', 'id="off-topic"'
    )

    teaching = next(a for t, a in doc.elements if a.get("id") == "teaching")
    assert (teaching["data-taught"], teaching["data-new-topic"], teaching["data-ignored"]) == ("1", "1", "1")
    assert NEW_TOPIC in _between(page, 'id="new-topics"', "</section>")
    assert "asdfgh" not in page  # handled: not listed again
    assert "Asia/Almaty" in _between(page, 'id="new-topics"', "</section>")


def _between(page: str, start: str, end: str) -> str:
    return page.split(start, 1)[1].split(end, 1)[0]


def _section_of_groups(page: str) -> dict[str, list[str]]:
    """For each <section>, the data-category of the groups inside it (parsed, not searched)."""

    class Sections(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.current: str | None = None
            self.found: dict[str, list[str]] = {}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "section":
                self.current = a.get("id") or ""
                self.found[self.current] = []
            elif tag == "div" and a.get("class") == "group" and self.current is not None:
                self.found[self.current].append(a.get("data-category") or "")

        def handle_endtag(self, tag: str) -> None:
            if tag == "section":
                self.current = None

    parser = Sections()
    parser.feed(page)
    return parser.found


def read_tables(folder: Path) -> dict[str, list[dict[str, str]]]:
    return {p.stem: list(csv.DictReader(p.open(encoding="utf-8"))) for p in sorted(folder.glob("*.csv"))}


def test_unanswered_groups_name_the_matchers_closest_entry(
    cli: RunCli, db: tuple[Path, str, str], knowledge: Knowledge
) -> None:
    path, _, _ = db
    result = cli("report", "--db", path, "--out-dir", path.parent / "csv")
    assert result.returncode == 0, result.stderr
    groups = read_tables(path.parent / "csv")["unanswered"]
    renew = next(g for g in groups if g["question"] == "where can I renew my refugee certificate")
    assert renew["category"] == "gap"
    expected = knowledge.index.match("where can I renew my refugee certificate", limit=1)[0]
    assert renew["closest_entry"] == expected.entry_id
    assert float(renew["closest_score"]) == pytest.approx(expected.score, abs=0.006)
    assert renew["closest_title"] == knowledge.faq.entries[expected.entry_id].langs["ru"].title


def test_csv_report_tables(cli: RunCli, db: tuple[Path, str, str]) -> None:
    path, other, urgent = db
    folder = path.parent / "tables"
    assert cli("report", "--db", path, "--format", "csv").returncode == 2  # one file per table: a folder
    result = cli("report", "--db", path, "--days", "30", "--format", "csv", "--out-dir", folder)
    assert result.returncode == 0, result.stderr
    tables = read_tables(folder)
    assert set(tables) == {
        "days",
        "languages",
        "crisis",
        "top_entries",
        "feedback",
        "unanswered",
        "new_topics",
        "teaching",
    }
    assert tables["crisis"] == [{"crisis_category": "medical", "urgent_replies": "1"}]  # counts only
    by_day = {r["day (Asia/Almaty)"]: r for r in tables["days"]}
    assert len(by_day) == 30 and day(29) in by_day and day(30) not in by_day
    assert by_day[day(0)]["questions"] == "6"
    assert by_day[day(0)]["answer"] == "3" and by_day[day(0)]["answer_rate"] == "0.5000"
    assert by_day[day(0)]["urgent_rate"] == "0.1667"
    assert by_day[day(2)]["questions"] == "0" and by_day[day(2)]["answer_rate"] == ""

    langs = {r["language"]: r for r in tables["languages"]}
    assert langs["ru"]["questions"] == "6" and langs["ru"]["answer"] == "5" and langs["ru"]["fallback"] == "1"
    assert langs["en"]["questions"] == "3" and langs["en"]["did_you_mean_rate"] == "0.3333"
    assert langs["kk"]["urgent"] == "1"
    assert langs["total"]["questions"] == "10"

    top = [(r["entry"], r["shown"]) for r in tables["top_entries"]]
    assert top[0] == ("asylum-apply", "5")
    assert (other, "1") in top and (urgent, "1") in top

    assert tables["feedback"] == [
        {"entry": "asylum-apply", "title": tables["feedback"][0]["title"], "helpful": "3", "not_helpful": "1"}
    ]
    questions = [r["question"] for r in tables["unanswered"]]
    assert "old question outside the period" not in questions and NEW_TOPIC not in questions
    assert questions.count("погода в алматы") == 1  # shown once, with its count
    weather = next(r for r in tables["unanswered"] if r["question"] == "погода в алматы")
    assert weather["count"] == "2" and weather["group_size"] == "4" and weather["group"] == "1"
    assert weather["category"] == "off-topic"
    assert [r["question"] for r in tables["new_topics"]] == [NEW_TOPIC]
    assert set(tables["new_topics"][0]) == {"asked (Asia/Almaty)", "decided (Asia/Almaty)", "language", "question"}
    assert {r["action"]: r["count"] for r in tables["teaching"]} == {"taught": "1", "new_topic": "1", "ignored": "1"}


def test_text_report(cli: RunCli, db: tuple[Path, str, str]) -> None:
    path, _, _ = db
    result = cli("report", "--db", path, "--days", "7")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "(7 days, Asia/Almaty time)" in text
    assert "Total: 10 questions: answered 60%, did-you-mean 10%, fallback 20%, urgent 10%" in text
    assert re.search(rf"^  {day(0)} +6 +50% +17% +17% +17%$", text, re.M)
    assert re.search(rf"^  {day(2)} +0 +– +– +– +–$", text, re.M)  # one quiet day: its own row
    assert f"  {day(6)} – {day(4)}: no questions (3 days)" in text  # a quiet run: one row
    assert not re.search(rf"^  {day(5)} ", text, re.M)
    assert "👍   3  👎   1  asylum-apply" in text
    assert "Urgent replies by crisis category (counts only):\n      1  medical\n" in text
    assert "Unanswered questions: 8 to review (scrubbed), grouped by similarity; 3 more already handled." in text
    gaps, off = text.split("Possible gaps (3 question(s) in 3 group(s))")[1].split(
        "Off-topic (5 question(s) in 2 group(s))"
    )
    assert EVIL in gaps and "погода" not in gaps
    assert "погода в алматы  ×2" in off and "about other services (погод" in off
    assert "Teaching: taught 1, new topic 1, ignored 1" in text
    assert f"  - {NEW_TOPIC}  [ru; asked {day(1)} 12:00 Asia/Almaty]" in text


def test_days_window_and_db_from_environment(
    cli: RunCli, db: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, _ = db
    monkeypatch.setenv("KOMEK_DB", str(path))  # run_cli passes the environment on
    result = cli("report", "--days", "1", "--out-dir", path.parent / "one-day")
    assert result.returncode == 0, result.stderr
    rows = read_tables(path.parent / "one-day")["days"]
    assert [(r["day (Asia/Almaty)"], r["questions"]) for r in rows] == [(day(0), "6")]


def test_report_opens_the_database_read_only(cli: RunCli, db: tuple[Path, str, str]) -> None:
    path, _, _ = db
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    # a writer holding the write lock does not stop a report (WAL readers never wait for writers)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO events (ts, pid, kind) VALUES ('2000-01-01T00:00:00+00:00', ?, 'answer')", (USERS[0],))
    try:
        result = cli("report", "--db", path, timeout=30)
    finally:
        con.execute("ROLLBACK")
        con.close()
    assert result.returncode == 0, result.stderr
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_missing_or_foreign_database_is_one_line_exit_1(cli: RunCli, tmp_path: Path) -> None:
    result = cli("report", "--db", tmp_path / "nope.sqlite3")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "nope.sqlite3").exists()  # a report never creates the file

    junk = tmp_path / "junk.sqlite3"
    junk.write_text("not a database at all, just some text " * 50)
    result = cli("report", "--db", junk)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0

    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    result = cli("report", "--db", empty)
    assert result.returncode == 1 and "not a Komek database" in result.stderr

    assert cli("report", "--days", "0", "--db", junk).returncode == 2


def test_empty_period_renders_every_format(cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"

    async def create() -> None:
        async with await Storage.open(path):
            pass

    asyncio.run(create())
    assert cli("report", "--db", path, "--out-dir", tmp_path / "csv", "--days", "3").returncode == 0
    assert (tmp_path / "csv" / "days.csv").read_text("utf-8").count("\n") == 4  # the header and 3 days
    for fmt in ("text", "html"):
        result = cli("report", "--db", path, "--format", fmt, "--days", "3")
        assert result.returncode == 0, result.stderr
    parse_html(result.stdout)
    assert "None in this period" in result.stdout


# ---------------------------------------------------------------- the pure part


def test_similar_questions_cluster_and_different_ones_do_not() -> None:
    texts = [
        "как получить паспорт",
        "паспорт как получить?",
        "как получить визу",
        "погода в алматы",
        "какая погода в алматы завтра",
    ]
    groups = cluster([topic_key(t) for t in texts])
    as_sets = sorted(sorted(texts[i] for i in g) for g in groups)
    assert as_sets == [
        ["как получить визу"],
        ["как получить паспорт", "паспорт как получить?"],
        ["какая погода в алматы завтра", "погода в алматы"],
    ]


def test_compute_counts_local_days_and_skips_rows_outside() -> None:
    tz = ZoneInfo("Asia/Almaty")
    first, last = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    # 20:00 UTC on 1 Nov is 01:00 on 2 Nov in Almaty
    late = dt.datetime(2026, 11, 1, 20, 0, tzinfo=dt.UTC)
    before = dt.datetime(2026, 10, 31, 12, 0, tzinfo=dt.UTC)
    report = compute(
        [Event(late, "answer", "x", "ru"), Event(before, "answer", "x", "ru")],
        [Unanswered(before, "ru", "fallback", "old")],
        [],
        first_day=first,
        last_day=last,
        tz=tz,
        titles={"x": "X"},
        closest=lambda text: None,
    )
    assert [(d, c.questions) for d, c in report.by_day] == [(first, 0), (last, 1)]
    assert report.unanswered == 0 and report.groups == ()
    assert report.top[0].entry_id == "x" and report.top[0].shown == 1


def test_csv_cells_from_users_are_not_formulas() -> None:
    from bot.report import render_csv_tables, render_html

    now = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
    report = compute(
        [Event(now, "fallback", None, "en")],
        [Unanswered(now, "en", "fallback", '=HYPERLINK("http://x")'), Unanswered(now, "en", "fallback", "@SUM(A1)")],
        [],
        first_day=now.date(),
        last_day=now.date(),
        tz=ZoneInfo("UTC"),
        titles={},
        closest=lambda text: None,
    )
    table = render_csv_tables(report)["unanswered.csv"]
    cells = [row["question"] for row in csv.DictReader(io.StringIO(table))]
    assert sorted(cells) == ['\'=HYPERLINK("http://x")', "'@SUM(A1)"]
    page = render_html(report)
    parse_html(page)
    assert "=HYPERLINK(&quot;http://x&quot;)" in page


def test_titles_in_the_language_staff_choose(cli: RunCli, db: tuple[Path, str, str], knowledge: Knowledge) -> None:
    path, _, _ = db
    titles = knowledge.faq.entries["asylum-apply"].langs
    english = cli("report", "--db", path, "--lang", "en").stdout
    assert f"asylum-apply  ({titles['en'].title})" in english
    assert f"asylum-apply  ({titles['ru'].title})" in cli("report", "--db", path).stdout  # the default language
    refused = cli("report", "--db", path, "--lang", "xx")
    assert refused.returncode == 2 and "--lang must be one of ru, kk, en" in refused.stderr


def test_a_database_from_before_teaching_still_reports(cli: RunCli, db: tuple[Path, str, str]) -> None:
    path, _, _ = db
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE teaching")
    result = cli("report", "--db", path)
    assert result.returncode == 0, result.stderr
    assert "Teaching: taught 0, new topic 0, ignored 0" in result.stdout
