"""`python -m bot …`: the staff and test command line. The only place that prints for staff and picks
exit codes (0 fine, 1 content problems or accuracy below a floor, 2 usage or environment)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.content import Loaded, Training, load_knowledge
from bot.dialogue import Knowledge, reply_to_text
from bot.faq import FAQ
from bot.i18n import choose_language
from bot.problems import ContentError, Problems
from bot.yamlio import YamlProblem, read_yaml


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faq", type=Path, default=None, help="FAQ folder (default: faq_dir in the config)")
    p.add_argument("--config", type=Path, default=Path("config.yaml"), help="config file (default: config.yaml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Komek help-line bot: tools for staff.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="validate config.yaml and every FAQ file; list every problem")
    _common(p)
    p.add_argument("--stale-months", type=int, default=6, help="warn about entries reviewed longer ago (default 6)")
    p.add_argument("--quiet", action="store_true", help="print errors only, no warnings")
    p.add_argument(
        "--retrain", action="store_true", help="train the learned ranker even when its cache holds this FAQ version"
    )

    p = sub.add_parser("ask", help="print the reply the bot would give to a question")
    _common(p)
    p.add_argument("--lang", choices=None, default=None, help="reply language (default: detected)")
    p.add_argument("--json", action="store_true", help="JSON output; with no QUESTION, one question per stdin line")
    p.add_argument("question", nargs="*", help="the question (omit with --json to read stdin)")

    p = sub.add_parser("export", help="the loaded FAQ as JSON, for translation tools and review")
    _common(p)
    p.add_argument("--format", choices=["json"], default="json")

    p = sub.add_parser("chat", help="offline terminal chat with the same dialogue as the bot")
    _common(p)
    p.add_argument("--lang", default=None, help="start in this language (default: ask)")
    p.add_argument(
        "--db", type=Path, default=None, help="record to this SQLite file as the live bot does (default: nothing)"
    )

    p = sub.add_parser("eval", help="accuracy on a labelled YAML file of {q, expect[, lang, kind]} items")
    _common(p)
    p.add_argument("file", type=Path)
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--misses", type=int, default=40, help="how many misses to list (default 40)")
    p.add_argument("--min-top1", type=float, default=None, help="exit 1 when shown-first is below this")
    p.add_argument("--min-rejection", type=float, default=None, help="exit 1 when off-topic rejection is below")
    p.add_argument(
        "--engine",
        choices=["combined", "matcher", "ranker"],
        default="combined",
        help="what decides: the bot's combination (default), or the matcher or the learned ranker alone",
    )
    p.add_argument(
        "--unseen",
        action="store_true",
        help="first take the set's own messages out of the FAQ's questions (and train on the rest)",
    )
    p = sub.add_parser("report", help="usage report: rates by day and language, feedback, unanswered questions")
    _common(p)
    p.add_argument("--days", type=int, default=30, help="the last N days, today included (default 30)")
    p.add_argument("--format", choices=["text", "csv", "html"], default="text", help="output format (default text)")
    p.add_argument("--out", type=Path, default=None, help="write to this file (default: print)")
    p.add_argument("--db", type=Path, default=None, help="database (default: KOMEK_DB, else storage.database)")
    p.add_argument("--lang", default=None, help="entry titles in this language (default: the default language)")
    p.add_argument("--out-dir", type=Path, default=None, help="CSV: write one file per table into this folder")
    p = sub.add_parser(
        "teach",
        help="list the questions the bot could not answer, teach one to an entry, or merge taught phrasings",
        description=(
            "Without arguments: the newest unanswered questions with their ids and closest entries (like "
            "/unanswered). `teach ID ENTRY` adds question ID's text to ENTRY's questions in faq/taught.yaml "
            "(ENTRY is an entry id, or 1-3 for the closest ones listed); you see exactly what will be added "
            "and confirm. `teach ID --new-topic` keeps it for the next content review, `teach ID --ignore` "
            "drops it. `teach --merge` moves every taught phrasing into the section files."
        ),
    )
    _common(p)
    p.add_argument("question", nargs="?", type=int, default=None, help="the question's id (#12 in the list)")
    p.add_argument("entry", nargs="?", default=None, help="the entry id, or 1, 2 or 3 for the closest listed")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--new-topic", action="store_true", help="keep the question for the next content review")
    action.add_argument("--ignore", action="store_true", help="drop the question from the review")
    action.add_argument("--merge", action="store_true", help="move taught phrasings into the section files")
    p.add_argument("--yes", action="store_true", help="do it without asking to confirm")
    p.add_argument("--by", default="cli", help="who teaches, as written to taught.yaml (default: cli)")
    p.add_argument("--limit", type=int, default=10, help="how many questions to list (default 10, at most 30)")
    p.add_argument("--db", type=Path, default=None, help="database (default: KOMEK_DB, else storage.database)")
    p = sub.add_parser("preview", help="the whole FAQ as one HTML page, drafts and stale entries highlighted")
    _common(p)
    p.add_argument("--out", type=Path, default=None, help="write to this file (default: print)")
    p.add_argument("--stale-months", type=int, default=6, help="highlight entries reviewed longer ago (default 6)")
    p = sub.add_parser("run", help="run the Telegram bot with long polling (TELEGRAM_BOT_TOKEN, KOMEK_SECRET)")
    _common(p)
    p = sub.add_parser("webhook", help="run the Telegram bot behind a webhook (settings in config.yaml)")
    _common(p)
    p.add_argument(
        "--url", default=None, help="the public address Telegram posts to (default: telegram.webhook.public_url)"
    )
    return parser


def _load(args: argparse.Namespace, train: Training = "here") -> Loaded | None:
    """The content, or None after printing every problem. `train`: where a ranker that is not cached
    is trained ("here" for the tools; "later" for the bot and the chat, which start with the matcher
    alone and train it in a child process: bot/content.py)."""
    try:
        return load_knowledge(args.config, args.faq, _today(), train=train)
    except ContentError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"\n{len(exc.problems)} problem(s): fix them and run `python -m bot check`.", file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    from bot.faq import stale_warnings

    try:
        # the learned ranker is trained unless its cache holds arrays trained on exactly this FAQ
        # version by this code (then it was trained before; --retrain trains it again all the same),
        # in a child process as the bot trains it, so a FAQ that passes check trains in the bot too
        loaded = load_knowledge(args.config, args.faq, _today(), use_cache=not args.retrain, train="child")
    except ContentError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"\nFAIL: {len(exc.problems)} error(s). The bot keeps serving the last good version.")
        return 1
    extra = Problems()
    stale_warnings(loaded.knowledge.faq, _today(), args.stale_months, extra)
    warnings = list(loaded.warnings) + extra.warnings
    if not args.quiet:
        for w in warnings:
            print(w)
    faq = loaded.knowledge.faq
    ranker = loaded.knowledge.understanding.ranker
    if ranker is not None:
        how = "trained on this FAQ" if loaded.ranker_source == "trained" else "trained on this FAQ before (cached)"
        took = f"; {loaded.build.wall_seconds:.1f} s" if loaded.build is not None else ""
        print(f"learned ranker: {how} ({len(ranker.classes)} entries, {len(ranker.model.vocab)} features{took})")
    else:
        print(f"learned ranker: none for a FAQ of {len(faq.entries)} entries (the matcher decides alone)")
    print(
        f"OK: {len(faq.entries)} entries in {len(faq.sections)} sections, "
        f"{len(loaded.knowledge.config.languages)} languages; {len(warnings)} warning(s)."
    )
    return 0


def _reply_json(k: Knowledge, question: str, lang: str | None) -> dict[str, Any]:
    chosen = choose_language(lang, None, question, k.config.languages, k.config.default_language)
    reply = reply_to_text(k, question, chosen)
    return {
        "query": question,
        "id": reply.entry_id,
        "score": reply.score,
        "lang": reply.lang,
        "kind": reply.kind,
        "suggestions": list(reply.suggestions),
        "urgent": reply.urgent,
        "crisis": reply.crisis,
        "text": reply.text,
    }


def cmd_ask(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if loaded is None:
        return 1
    k = loaded.knowledge
    if args.lang is not None and args.lang not in k.config.languages:
        print(f"--lang must be one of {', '.join(k.config.languages)}", file=sys.stderr)
        return 2
    question = " ".join(args.question)
    if args.json:
        lines = [question] if question else (line.rstrip("\n") for line in sys.stdin)
        for line in lines:
            print(json.dumps(_reply_json(k, line, args.lang), ensure_ascii=False), flush=True)
        return 0
    if not question:
        print('give a question, e.g.: python -m bot ask "как получить статус беженца"', file=sys.stderr)
        return 2
    from bot.console import render

    chosen = choose_language(args.lang, None, question, k.config.languages, k.config.default_language)
    reply = reply_to_text(k, question, chosen)
    text, _ = render(reply)
    print(f"[{reply.kind} id={reply.entry_id} score={reply.score:.2f} lang={reply.lang}]")
    print(text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if loaded is None:
        return 1
    faq = loaded.knowledge.faq
    out = {
        "entries": [
            {
                "id": e.id,
                "section": e.section,
                "sources": list(e.sources),
                "link": e.link,
                "reviewed": e.reviewed.isoformat(),
                "urgent": e.urgent,
                "related": list(e.related),
                "languages": {
                    lang: {
                        "title": b.title,
                        "questions": list(b.questions),
                        "keywords": list(b.keywords),
                        "answer": b.answer,
                        "checked": b.checked,
                    }
                    for lang, b in e.langs.items()
                },
            }
            for e in faq.entries.values()
        ]
    }
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    import os

    from bot.console import OFFLINE_KEY, Recorder, run_chat
    from bot.storage import StorageError

    loaded = _load(args, train="later")
    if loaded is None:
        return 1
    k = loaded.knowledge
    if args.lang is not None and args.lang not in k.config.languages:
        print(f"--lang must be one of {', '.join(k.config.languages)}", file=sys.stderr)
        return 2
    serving = Serving(loaded)  # the matcher alone until the ranker is trained, in a child process
    recorder = None
    if args.db is not None:
        key = os.environ.get("KOMEK_SECRET", "").strip().encode() or OFFLINE_KEY
        try:
            recorder = Recorder(args.db, key)
        except StorageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    serving.start()
    try:
        run_chat(k, args.lang, recorder=recorder, knowledge=serving.knowledge)
    finally:
        serving.stop()
        if recorder is not None:
            recorder.close()
    return 0


class Serving:
    """The terminal chat's content: `loaded`'s version, and the same with its ranker once a child
    process has trained it (`start` begins that in a thread when it is not cached; a failure is
    logged and the matcher keeps answering alone)."""

    def __init__(self, loaded: Loaded) -> None:
        import threading

        from bot.understanding.build import Build

        self._loaded = loaded
        self._builds: set[Build] = set()
        self._thread = threading.Thread(target=self._train, name="ranker-build", daemon=True)

    def knowledge(self) -> Knowledge:
        return self._loaded.knowledge

    def start(self) -> None:
        if self._loaded.pending is not None:
            self._thread.start()

    def stop(self) -> None:
        for build in list(self._builds):
            build.cancel()

    def _train(self) -> None:
        from bot.content import trained

        try:
            self._loaded = trained(self._loaded, self._builds)
        except ContentError as exc:
            logging.getLogger("komek").warning("%s; the matcher answers alone", exc.problems[0])


def cmd_eval(args: argparse.Namespace) -> int:
    from bot.evaluation import evaluate, parse_items, unknown_ids, unseen, with_engine

    loaded = _load(args)
    if loaded is None:
        return 1
    try:
        items = parse_items(read_yaml(args.file))
    except (YamlProblem, ValueError) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    k = loaded.knowledge
    missing = unknown_ids(k, items)
    if missing:
        print(f"{args.file}: expected ids not in the FAQ: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.unseen:
        k = unseen(k, items)
    report = evaluate(with_engine(k, args.engine), items)
    result = report.as_dict()
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        o = result["overall"]
        seen = ", unseen: its messages taken out of the FAQ" if args.unseen else ""
        print(f"{args.file}: {o['in_scope']} in-scope, {o['off_scope']} out-of-scope messages ({args.engine}{seen})")
        print(
            f"  {'':14} {'strict top-1':>12} {'shown-first':>11} {'top-3':>6} {'direct':>6} {'precision':>9}"
            f" {'rejection':>9}   n"
        )
        rows = [("overall", o)]
        rows += [(f"lang {lang}", t) for lang, t in result["per_lang"].items()]
        rows += [(f"kind {kind}", t) for kind, t in result["per_kind"].items()]
        for name, t in rows:
            print(
                f"  {name:14} {_fig(t['strict_top1']):>12} {_fig(t['shown_first']):>11} {_fig(t['top3']):>6}"
                f" {_fig(t['direct']):>6} {_fig(t['direct_precision']):>9} {_fig(t['rejection']):>9}"
                f"   {t['in_scope']}+{t['off_scope']}"
            )
        print(
            "  strict top-1: answered directly and right; shown-first: the direct answer or the first"
            ' "did you mean" is right; precision: of the direct answers; rejection: of the off-topic messages'
        )
        if args.misses:
            print(f"misses ({len(report.misses)}):")
            for m in report.misses[: args.misses]:
                print(
                    f"  [{m['lang']}] {m['q']!r}: expected {m['expect']}, "
                    f"got {m['kind']} {m['got']} {m['suggestions']} top={m['top']}"
                )
    overall = result["overall"]
    reasons = []
    if args.min_top1 is not None and (overall["shown_first"] or 0) < args.min_top1:
        reasons.append(f"shown-first {overall['shown_first']} is below --min-top1 {args.min_top1}")
    if args.min_rejection is not None and (overall["rejection"] or 0) < args.min_rejection:
        reasons.append(f"off-topic rejection {overall['rejection']} is below --min-rejection {args.min_rejection}")
    for reason in reasons:
        print(f"FAIL: {args.file}: {reason}", file=sys.stderr)
    return 1 if reasons else 0


def _fig(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _write(text: str, out: Path | None) -> int:
    """Print, or write the file (UTF-8) and say where it went."""
    if out is None:
        sys.stdout.write(text)
        return 0
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import asyncio
    import os
    from zoneinfo import ZoneInfo

    from bot import report as rp
    from bot.config import database_path
    from bot.storage import Storage, StorageError

    if args.days < 1:
        print("--days must be at least 1", file=sys.stderr)
        return 2
    if args.out_dir is not None:
        args.format = "csv"
    if args.format == "csv" and args.out_dir is None:
        print("CSV is one file per table: give --out-dir FOLDER (e.g. --out-dir report-csv)", file=sys.stderr)
        return 2
    loaded = _load(args, train="later")  # counts and titles: no ranker needed, no training to wait for
    if loaded is None:
        return 1
    k = loaded.knowledge
    if args.lang is not None and args.lang not in k.config.languages:
        print(f"--lang must be one of {', '.join(k.config.languages)}", file=sys.stderr)
        return 2
    db = args.db or database_path(os.environ, k.config.storage.database, args.config.parent)  # the bot's own
    tz = ZoneInfo(k.config.contacts.office.hours.timezone)
    now = dt.datetime.now(dt.UTC)
    first, last, since = rp.period(now, args.days, tz)
    until = now + dt.timedelta(days=1)  # a clock a little ahead of ours still counts as today

    async def read() -> tuple[list[rp.Event], list[rp.Unanswered], list[rp.Vote], list[rp.Decided]]:
        async with await Storage.open_readonly(db) as store:
            events = [
                rp.Event(rp.parse_ts(t), kind, e, lang, c)
                for t, kind, e, lang, c in await store.events_between(since, until)
            ]
            unanswered = [
                rp.Unanswered(rp.parse_ts(t), lang, kind, text)
                for t, lang, kind, text in await store.unanswered_between(since, until)
            ]
            votes = [rp.Vote(rp.parse_ts(t), e, ok) for t, e, ok in await store.feedback_between(since, until)]
            decided = [
                rp.Decided(rp.parse_ts(t), action, entry, lang, text)
                for t, _, action, entry, lang, _, text in await store.teaching_decisions()
            ]
        return events, unanswered, votes, decided

    try:
        events, unanswered, votes, decided = asyncio.run(read())
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = rp.compute(
        events,
        unanswered,
        votes,
        first_day=first,
        last_day=last,
        tz=tz,
        titles=rp.entry_titles(k.faq, args.lang or k.config.default_language),
        closest=rp.matcher_closest(k.index),
        near=k.config.matcher.suggest_threshold,
        off_topic=k.index.off_topic_words,
        decisions=decided,
    )
    if args.format == "csv":
        return _write_tables(rp.render_csv_tables(report), args.out_dir)
    if args.format == "html":
        text = rp.render_html(report, f"Generated {rp.local(now, str(tz))} ({now:%H:%M} UTC) from {db.name}.")
    else:
        text = rp.render_text(report)
    return _write(text, args.out)


def _write_tables(tables: dict[str, str], folder: Path) -> int:
    """The report's CSV tables, one file each, into `folder` (created if needed)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in tables.items():
            (folder / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"cannot write into {folder}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(tables)} tables into {folder}: {', '.join(tables)}", file=sys.stderr)
    return 0


def _database(args: argparse.Namespace, k: Knowledge) -> Path:
    import os

    from bot.config import database_path

    return Path(args.db or database_path(os.environ, k.config.storage.database, args.config.parent))


def _confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    print(f"{question} [y/N] ", end="", flush=True)
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def cmd_teach(args: argparse.Namespace) -> int:
    import asyncio
    from zoneinfo import ZoneInfo

    from bot import review
    from bot.content import resolve_faq_dir
    from bot.storage import Storage, StorageError
    from bot.taught import BY_RE, clean_text

    if not BY_RE.match(args.by):
        print("--by must be a short name or pseudonym (letters, digits, - _ .)", file=sys.stderr)
        return 2
    if args.question is None and (args.entry or args.new_topic or args.ignore):
        print("give the question's id first, e.g.: python -m bot teach 12 asylum-apply", file=sys.stderr)
        return 2
    if args.question is not None and not (args.entry or args.new_topic or args.ignore):
        print("say what to do: an ENTRY to teach it to, --new-topic or --ignore", file=sys.stderr)
        return 2
    # the matcher's candidates and the content only: no ranker needed, no training to wait for
    loaded = _load(args, train="later")
    if loaded is None:
        return 1
    k = loaded.knowledge
    faq_dir = resolve_faq_dir(k.config, args.config, args.faq)
    if args.merge:
        return _teach_merge(args, loaded, faq_dir)
    db = _database(args, k)
    tz = ZoneInfo(k.config.contacts.office.hours.timezone)
    lang = k.config.default_language
    now = dt.datetime.now(dt.UTC)

    async def listing() -> str:
        async with await Storage.open_readonly(db) as store:
            rows = await store.recent_unanswered(500)
            decisions = review.decisions_by_text(await store.teaching_decisions())
        items = review.questions_for_review(rows, decisions, review.parse_limit(str(args.limit)))
        return review.listing(k, items, tz, lang) + (
            "\nTeach one: python -m bot teach ID ENTRY (ENTRY: an entry id, or 1-3 from the list)\n" if items else ""
        )

    async def decide() -> int:
        async with await Storage.open(db) as store:
            row = await store.unanswered_by_id(args.question)
            if row is None:
                print(f"#{args.question}: no such question stored (purged, erased, or a wrong id)", file=sys.stderr)
                return 1
            decisions = review.decisions_by_text(await store.teaching_decisions())
            [q] = review.questions_for_review([row], decisions, 1)
            print(review.question_text(q, tz))
            if q.decision is not None:
                print(f"Already handled: {review.decision_text(q.decision, tz)}")
                return 1
            if args.new_topic or args.ignore:
                action = "new_topic" if args.new_topic else "ignored"
                await store.record_teaching(q.id, action, None, None, args.by, now)
                print("Kept for the next content review." if args.new_topic else "Ignored.")
                return 0
            entry_id = args.entry
            if entry_id in ("1", "2", "3"):
                closest = review.closest_entries(k, q.text)
                if int(entry_id) > len(closest):
                    print(f"there is no closest entry number {entry_id}", file=sys.stderr)
                    return 2
                entry_id = closest[int(entry_id) - 1].entry_id
            text = clean_text(q.text)
            problem = review.teach_problem(k, entry_id, text)
            if problem is not None:
                print(f"Not taught: {problem}.", file=sys.stderr)
                return 1
            print("\n" + review.confirm_text(k, q, entry_id, lang))
            if not _confirm("Add it?", args.yes):
                print("Nothing added.")
                return 1
            item, said = review.teach(k, faq_dir, q, entry_id, args.by, now.astimezone(tz).date())
            print(said)
            if item is None:
                return 1
            await store.record_teaching(q.id, "taught", item.entry_id, item.lang, args.by, now)
            print("The running bot picks it up within 30 seconds (an admin's /reload: at once).")
            return 0

    try:
        if args.question is None:
            sys.stdout.write(asyncio.run(listing()))
            return 0
        return asyncio.run(decide())
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _teach_merge(args: argparse.Namespace, loaded: Loaded, faq_dir: Path) -> int:
    """`teach --merge`: every taught phrasing into its section file, checked on a copy first."""
    import shutil
    import tempfile

    from bot.faq import load_faq
    from bot.taught import TAUGHT_FILE, merge_texts, plan_merge, write_atomically

    faq = loaded.knowledge.faq
    if not faq.taught:
        print(f"Nothing to merge: {faq_dir / TAUGHT_FILE} has no taught phrasings.")
        return 0
    taught_path = faq_dir / TAUGHT_FILE
    plan = merge_texts(plan_merge(faq_dir, faq.entries, faq.taught), taught_path, faq.taught)
    for item in plan.merged:
        print(f"  {item.entry_id} ({item.lang}): {item.text}")
    for item, why in plan.kept:
        print(f"  stays in {TAUGHT_FILE}: {item.entry_id} ({item.lang}) {item.text!r}: {why}")
    if not plan.merged:
        return 1
    # the same content, checked on a copy: every entry must keep exactly its questions
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "faq"
        shutil.copytree(faq_dir, copy)
        for path, text in plan.files.items():
            (copy / path.name).write_text(text, encoding="utf-8")
        (copy / TAUGHT_FILE).write_text(plan.taught_text, encoding="utf-8")
        try:
            after = load_faq(copy, loaded.knowledge.config, _today())
        except ContentError as exc:
            print("Not merged: the merged files would not pass check:", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            return 1
    changed = _changed_questions(faq, after)
    if changed:
        print(f"Not merged: the questions of {', '.join(changed)} would change; add them by hand.", file=sys.stderr)
        return 1
    files = ", ".join(str(p) for p in plan.files)
    if not _confirm(f"Move {len(plan.merged)} phrasing(s) into {files}?", args.yes):
        print("Nothing changed.")
        return 1
    for path, text in plan.files.items():
        write_atomically(path, text)
    write_atomically(taught_path, plan.taught_text)
    print(f"Merged {len(plan.merged)} phrasing(s); {len(plan.kept)} stay in {TAUGHT_FILE}. Run `python -m bot check`.")
    return 0


def _changed_questions(before: FAQ, after: FAQ) -> list[str]:
    """Entries whose questions (in any language) differ between two loads of the content."""
    if set(before.entries) != set(after.entries):
        return sorted(set(before.entries) ^ set(after.entries))
    changed = []
    for entry_id, entry in before.entries.items():
        other = after.entries[entry_id]
        if any(sorted(b.questions) != sorted(other.langs[lang].questions) for lang, b in entry.langs.items()):
            changed.append(entry_id)
    return changed


def cmd_preview(args: argparse.Namespace) -> int:
    from bot.preview import render_preview

    loaded = _load(args)
    if loaded is None:
        return 1
    return _write(render_preview(loaded.knowledge, _today(), args.stale_months), args.out)


def cmd_run(args: argparse.Namespace, webhook: bool = False) -> int:
    import os

    from bot.app import EnvError, build_application, read_env, setup_logging

    loaded = _load(args, train="later")
    if loaded is None:
        return 1
    try:
        env = read_env(
            os.environ, loaded.knowledge.config.storage.database, args.config.parent, need_webhook_secret=webhook
        )
    except EnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    url = (getattr(args, "url", None) or loaded.knowledge.config.telegram.webhook.public_url) if webhook else None
    if webhook and not url:
        print("error: set telegram.webhook.public_url in config.yaml (or give --url) for webhook mode", file=sys.stderr)
        return 2
    setup_logging([env.token, env.secret.decode(), env.webhook_secret or ""])
    for warning in loaded.warnings:
        logging.getLogger("komek").warning("%s", warning)
    log_engine(loaded)
    return _serve_until_stopped(lambda: build_application(loaded, env, args.config, args.faq), env, url, webhook)


def log_engine(loaded: Loaded) -> None:
    """Which engine answers from the first message."""
    log = logging.getLogger("komek")
    entries = len(loaded.knowledge.faq.entries)
    if loaded.ranker_source == "pending":
        log.info(
            "matcher only until the ranker is trained: no learned ranker cached for this FAQ version "
            "(%d entries); training it in a child process",
            entries,
        )
    elif loaded.ranker_source == "none":
        log.info("matcher only: a FAQ of %d entries gets no learned ranker", entries)
    else:
        log.info("matcher and learned ranker from the start: this FAQ version's model was cached")


RETRY_FIRST, RETRY_MAX = 2.0, 60.0  # seconds between start-up attempts while Telegram cannot be reached


def _serve_until_stopped(build: Any, env: Any, url: str | None, webhook: bool) -> int:
    """Start the bot; while Telegram cannot be reached at start-up (no network, DNS, a firewall), say so
    in one line and try again, waiting longer each time (up to a minute), instead of a traceback.
    A token Telegram refuses is not retried: one line, exit code 2."""
    import time

    from telegram.error import InvalidToken, NetworkError

    from bot.app import run_polling, run_webhook

    log = logging.getLogger("komek")
    delay = RETRY_FIRST
    while True:
        app = build()  # a fresh Application each attempt: a failed start leaves PTB's objects half set up
        try:
            if webhook:
                run_webhook(app, env, url)
            else:
                run_polling(app)
            return 0
        except InvalidToken as exc:
            log.error("Telegram refused the token (%s): check TELEGRAM_BOT_TOKEN", exc)
            return 2
        except NetworkError as exc:  # TimedOut is one too
            log.warning("Telegram cannot be reached (%s); trying again in %.0f s (Ctrl-C to stop)", exc, delay)
        try:
            time.sleep(delay)
        except KeyboardInterrupt:
            return 0
        delay = min(delay * 2, RETRY_MAX)


def cmd_webhook(args: argparse.Namespace) -> int:
    return cmd_run(args, webhook=True)


COMMANDS = {
    "run": cmd_run,
    "webhook": cmd_webhook,
    "check": cmd_check,
    "ask": cmd_ask,
    "export": cmd_export,
    "chat": cmd_chat,
    "eval": cmd_eval,
    "report": cmd_report,
    "preview": cmd_preview,
    "teach": cmd_teach,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)
