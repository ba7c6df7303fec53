"""Matcher latency and index build time, shipped FAQ and synthetic FAQs of 500 / 2,000 / 10,000 entries.

Latency is measured two ways on the eval messages (tests/data/eval.yaml + eval_holdout.yaml):
- reply: dialogue.reply_to_text, the whole path the bot runs for a free-text message (safety
  check, content words, Index.match, the decision, the reply text and buttons);
- match: the bare Index.match.
Shipped FAQ: every message, SHIPPED_ROUNDS "cold" passes each on a freshly built index (its per-word
caches hold only the FAQ's own words, which a small index looks up while it is built; every other
word of the messages is new to it; the samples are pooled) and one "warm" pass after the first. Synthetic FAQs
(bench/synthetic.py), each in its own process with a time limit: a seeded random sample of the
messages, as many as fit in a time budget per size (n is printed; with a small n, p99 is the
maximum); every other message is timed with match, the others with reply (each message once: the
index caches what it learnt about a word, so a second timing of the same message would measure the
cache). The goals are judged on the cold passes (shipped) and on the sample (synthetic).
Baseline: rapidfuzz process.extractOne(message, every question of every language, scorer=WRatio), the
naive matcher, timed on the same messages. Top-1 (first entry shown == expected, in-scope messages
only; synthetic FAQs: on the reply half of the sample) is printed for both, for context: the
synthetic entries are distractors.

Usage: .venv/bin/python bench/bench_matcher.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import ROOT, eval_messages, goal, median, say, summary_ms, verdict
from rapidfuzz import fuzz, process, utils
from synthetic import describe, synthetic_faq

from bot.content import load_knowledge
from bot.dialogue import ANSWER_KINDS, Knowledge, Reply, reply_to_text
from bot.faq import FAQ
from bot.i18n import choose_language
from bot.understanding import ranker

SIZES = (500, 2000, 10_000)
# seconds of querying per synthetic size (each message is timed with match or reply; at least
# MIN_MESSAGES are timed whatever the budget; the baseline then gets BASELINE_SHARE of it)
BUDGET = {500: 12.0, 2000: 15.0, 10_000: 12.0}
MIN_MESSAGES = 10  # 5 for match, 5 for reply
BASELINE_SHARE = 0.4  # of a synthetic size's query budget, for the naive baseline (after the matcher)
BASELINE_MIN = 4  # messages the baseline is timed on, whatever the budget
SHIPPED_ROUNDS = 3  # cold passes over every message with the shipped FAQ (each on a fresh index)
# each synthetic size runs in its own process (clean peak RSS), killed after this many seconds
LIMIT = {500: 90.0, 2000: 150.0, 10_000: 240.0}
GOAL_SHIPPED_P99_MS = 3.0
GOAL_10K_P99_MS = 30.0
GOAL_MODEL_BUILD_S = 10.0
MODEL_BUILDS = 2  # the learned ranker trained this many times on the shipped FAQ


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Baseline:
    """The naive matcher: the best WRatio over every question variant of every entry."""

    def __init__(self, faq: FAQ) -> None:
        t0 = time.perf_counter()
        self.choices: list[str] = []
        self.owner: list[str] = []
        for entry in faq.entries.values():
            for block in entry.langs.values():
                for q in block.questions:
                    self.choices.append(utils.default_process(q))
                    self.owner.append(entry.id)
        self.build_s = time.perf_counter() - t0

    def match(self, text: str) -> str | None:
        hit = process.extractOne(utils.default_process(text), self.choices, scorer=fuzz.WRatio, processor=None)
        return self.owner[hit[2]] if hit else None


def _shown_first(reply: Reply) -> str | None:
    if reply.kind in ANSWER_KINDS:
        return reply.entry_id
    return reply.suggestions[0] if reply.suggestions else None


def _lang(k: Knowledge, text: str) -> str:
    return choose_language(None, None, text, k.config.languages, k.config.default_language)


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def _model_builds(faq: FAQ, runs: int) -> dict[str, Any]:
    """The learned ranker trained from the FAQ (augmentation, features, scikit-learn's fit), as on a
    load without a cached model: wall and CPU seconds, the first run including scikit-learn's import."""
    walls, cpus = [], []
    for _ in range(runs):
        c0 = time.process_time()
        t, model = _timed(ranker.build, faq)
        walls.append(t)
        cpus.append(time.process_time() - c0)
    return {
        "median_s": round(median(walls), 3),
        "runs_s": [round(t, 3) for t in walls],
        "cpu_s": [round(c, 3) for c in cpus],
        "features": len(model.vocab) if model is not None else 0,
        "entries": len(model.classes) if model is not None else 0,
        "trained": model is not None,
    }


def bench_shipped(base: Knowledge, messages: list[tuple[str, str | None]]) -> dict[str, Any]:
    langs = [_lang(base, q) for q, _ in messages]
    builds: list[float] = []
    model_builds = _model_builds(base.faq, MODEL_BUILDS)
    ranker_ = base.understanding.ranker
    model = ranker_.model if ranker_ is not None else None

    def fresh() -> Knowledge:
        # a fresh index (its per-word caches empty) beside the model trained above
        t, k = _timed(Knowledge.build, base.config, base.faq, model)
        assert isinstance(k, Knowledge)
        builds.append(t)
        gc.freeze()  # as the bot does after loading content (bot/content.py)
        return k

    warm_up = fresh()
    for q, _ in messages[:20]:  # warm the interpreter (imports, regex compilation), not the index
        reply_to_text(warm_up, q, "ru")
    passes: dict[str, list[float]] = {"reply_cold": [], "reply_warm": [], "match_cold": [], "match_warm": []}
    top1 = 0
    for r in range(SHIPPED_ROUNDS):  # cold passes each on a freshly built index; warm ones in round 1
        for path in ("reply", "match"):
            k = fresh()
            for phase in ("cold", "warm") if r == 0 else ("cold",):
                for (q, expect), lang in zip(messages, langs, strict=True):
                    if path == "reply":
                        t, reply = _timed(reply_to_text, k, q, lang)
                        if r == 0 and phase == "cold" and expect is not None:
                            top1 += _shown_first(reply) == expect
                    else:
                        t, _ = _timed(k.index.match, q, 6)
                    passes[f"{path}_{phase}"].append(t)
    baseline = Baseline(base.faq)
    base_times, base_top1 = [], 0
    for q, expect in messages:
        t, got = _timed(baseline.match, q)
        base_times.append(t)
        if expect is not None:
            base_top1 += got == expect
    in_scope = sum(1 for _, e in messages if e is not None)
    n = len(messages)
    # each message's fastest cold pass: what is left when other work on the machine is filtered out
    # (for context; the goal is judged on all cold samples)
    fastest = {path: [min(passes[f"{path}_cold"][i::n]) for i in range(n)] for path in ("reply", "match")}
    return {
        "faq": describe(base.faq),
        "reply_cold_fastest": summary_ms(fastest["reply"]),
        "match_cold_fastest": summary_ms(fastest["match"]),
        "index_build_s": {"median": round(median(builds), 4), "runs": [round(b, 4) for b in builds]},
        "model_build": model_builds,
        "cold_rounds": SHIPPED_ROUNDS,
        "reply_cold": summary_ms(passes["reply_cold"]),
        "reply_warm": summary_ms(passes["reply_warm"]),
        "match_cold": summary_ms(passes["match_cold"]),
        "match_warm": summary_ms(passes["match_warm"]),
        "baseline": summary_ms(base_times),
        "baseline_build_s": round(baseline.build_s, 4),
        "baseline_choices": len(baseline.choices),
        "top1": round(top1 / in_scope, 4),
        "baseline_top1": round(base_top1 / in_scope, 4),
        "in_scope": in_scope,
        "messages": len(messages),
        "peak_rss_mb": _rss_mb(),
    }


def bench_synthetic(
    base: Knowledge, size: int, messages: list[tuple[str, str | None]], budget: float
) -> dict[str, Any]:
    t_gen, faq = _timed(synthetic_faq, base.faq, size)
    c0 = time.process_time()
    t_model, model = _timed(ranker.build, faq)
    model_cpu = time.process_time() - c0
    t_build, k = _timed(Knowledge.build, base.config, faq, model)
    gc.freeze()  # as the bot does after loading content (bot/content.py)
    baseline = Baseline(faq)
    order = list(messages)
    random.Random(size).shuffle(order)
    for q, _ in messages[:20]:  # warm the interpreter on the shipped index, not the one measured
        reply_to_text(base, q, "ru")
    match_t: list[float] = []
    reply_t: list[float] = []
    base_t: list[float] = []
    top1 = base_top1 = in_scope = base_in_scope = 0
    deadline = time.monotonic() + budget
    for i, (q, expect) in enumerate(order):
        if len(match_t) + len(reply_t) >= MIN_MESSAGES and time.monotonic() > deadline:
            break
        # Each message is timed once, by one path: the index caches what it learnt about a word, so
        # timing reply after match on the same message would measure the cache, not the path.
        if i % 2 == 0:
            t, _ = _timed(k.index.match, q, 6)
            match_t.append(t)
        else:
            t, reply = _timed(reply_to_text, k, q, _lang(k, q))
            reply_t.append(t)
            if expect is not None:
                in_scope += 1
                top1 += _shown_first(reply) == expect
    # the naive scan is slow at scale: after the matcher, on the same messages in the same order,
    # for BASELINE_SHARE of the budget (at least BASELINE_MIN messages)
    for i, (q, expect) in enumerate(order):
        if len(base_t) >= BASELINE_MIN and sum(base_t) >= BASELINE_SHARE * budget:
            break
        t, got = _timed(baseline.match, q)
        base_t.append(t)
        if expect is not None and i % 2 == 1:
            base_in_scope += 1
            base_top1 += got == expect
    return {
        "faq": describe(faq),
        "generate_s": round(t_gen, 3),
        "index_build_s": {"median": round(t_build, 4), "runs": [round(t_build, 4)]},
        "model_build": {
            "median_s": round(t_model, 3),
            "cpu_s": [round(model_cpu, 3)],
            "trained": model is not None,
            "features": len(model.vocab) if model is not None else 0,
        },
        "reply": summary_ms(reply_t),
        "match": summary_ms(match_t),
        "baseline": summary_ms(base_t),
        "baseline_build_s": round(baseline.build_s, 4),
        "baseline_choices": len(baseline.choices),
        "top1": round(top1 / in_scope, 4) if in_scope else None,
        "baseline_top1": round(base_top1 / base_in_scope, 4) if base_in_scope else None,
        "in_scope": in_scope,
        "baseline_in_scope": base_in_scope,
        "messages": len(match_t) + len(reply_t),
        "budget_s": budget,
        "peak_rss_mb": _rss_mb(),
    }


def _line(name: str, s: dict[str, Any]) -> str:
    if not s.get("n"):
        return f"    {name:<13} (none)"
    return (
        f"    {name:<13} n={s['n']:<4} p50 {s['p50_ms']:>9.2f} ms   p99 {s['p99_ms']:>9.2f} ms"
        f"   max {s['max_ms']:>9.2f} ms"
    )


def run(quick: bool = False) -> dict[str, Any]:
    say("== Matcher ==")
    base = load_knowledge(ROOT / "config.yaml", None, dt.date.today()).knowledge
    messages = eval_messages()
    results: dict[str, Any] = {"sizes": {}}
    # The synthetic sizes first, each in a child process: on Linux a child's peak RSS starts from its
    # parent's at the fork, and the shipped part below trains the ranker (a few hundred MB at its peak)
    sizes = (500,) if quick else SIZES
    children = {size: _in_child(size, BUDGET[size] * (0.3 if quick else 1.0), LIMIT[size]) for size in sizes}
    r = bench_shipped(base, messages)
    results["sizes"]["shipped"] = r
    f = r["faq"]
    say(f"  shipped FAQ: {f['entries']} entries, {f['phrasings']} phrasings, {f['distinct_words']} words")
    mb = r["model_build"]
    say(
        f"    model build   {mb['median_s']:.2f} s (median of {len(mb['runs_s'])}: {mb['runs_s']} s,"
        f" CPU {mb['cpu_s']} s; the first with scikit-learn's import); {mb['features']} features"
    )
    say(
        f"    index build   {r['index_build_s']['median'] * 1000:.0f} ms (median of {len(r['index_build_s']['runs'])});"
        f" baseline: {r['baseline_choices']} questions, prepared in {r['baseline_build_s'] * 1000:.0f} ms"
    )
    for name in ("reply_cold", "reply_warm", "match_cold", "match_warm", "baseline"):
        say(_line(name, r[name]))
    say(f"    (each message's fastest of the {SHIPPED_ROUNDS} cold passes, for context:)")
    for name in ("reply_cold_fastest", "match_cold_fastest"):
        say(_line(name, r[name]))
    say(f"    top-1 {r['top1']:.3f} (naive baseline {r['baseline_top1']:.3f}) on {r['in_scope']} in-scope messages")
    for size in sizes:
        budget = BUDGET[size] * (0.3 if quick else 1.0)
        r = children[size]
        results["sizes"][str(size)] = r
        if r.get("timed_out"):
            say(
                f"  synthetic {size}: did not finish within {r['limit_s']:.0f} s"
                f" (index build + {budget:.0f} s of queries)"
            )
            continue
        f = r["faq"]
        say(f"  synthetic {size}: {f['phrasings']} phrasings, {f['distinct_words']} words")
        mb = r["model_build"]
        learned = (
            f"model build {mb['median_s']:.2f} s (CPU {mb['cpu_s'][0]:.2f} s), {mb['features']} features"
            if mb["trained"]
            else f"no learned ranker above {ranker.MAX_ENTRIES} entries (the matcher decides alone)"
        )
        say(f"    {learned}")
        say(
            f"    index build   {r['index_build_s']['median']:.2f} s;"
            f" baseline: {r['baseline_choices']} questions, prepared in {r['baseline_build_s']:.2f} s"
        )
        for name in ("reply", "match", "baseline"):
            say(_line(name, r[name]))
        top1 = "n/a" if r["top1"] is None else f"{r['top1']:.3f}"
        btop1 = "n/a" if r["baseline_top1"] is None else f"{r['baseline_top1']:.3f}"
        say(
            f"    top-1 {top1} on {r['in_scope']} in-scope messages (naive baseline {btop1} on"
            f" {r['baseline_in_scope']}); peak RSS {r['peak_rss_mb']} MB"
        )
    shipped = results["sizes"]["shipped"]
    goals = [
        goal(
            "model build (learned ranker), shipped FAQ (median)",
            shipped["model_build"]["median_s"],
            GOAL_MODEL_BUILD_S,
            "s",
        ),
        goal(
            "matcher p99, reply_to_text, shipped FAQ (cold pass)",
            shipped["reply_cold"]["p99_ms"],
            GOAL_SHIPPED_P99_MS,
            "ms",
        ),
        goal(
            "matcher p99, Index.match, shipped FAQ (cold pass)",
            shipped["match_cold"]["p99_ms"],
            GOAL_SHIPPED_P99_MS,
            "ms",
        ),
    ]
    big = results["sizes"].get("10000") or {}
    for path, name in (("reply", "reply_to_text"), ("match", "Index.match")):
        value = big[path]["p99_ms"] if path in big else None
        g = goal(f"matcher p99, {name}, 10,000 entries", value, GOAL_10K_P99_MS, "ms")
        if big.get("timed_out"):
            g["met"] = False  # not even built and queried within the time limit
            g["note"] = f"did not finish within {big['limit_s']:.0f} s"
        goals.append(g)
    results["goals"] = goals
    for g in goals:
        say(f"  {verdict(g)}")
    return results


def _in_child(size: int, budget: float, limit: float) -> dict[str, Any]:
    """One synthetic size in a child process (its own memory), killed after `limit` seconds."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--size", str(size), "--budget", str(budget)]
    try:
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit, check=True)
    except subprocess.TimeoutExpired:
        return {"timed_out": True, "limit_s": limit, "budget_s": budget}
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"bench_matcher --size {size} failed:\n{exc.stderr[-3000:]}") from None
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _child(size: int, budget: float) -> None:
    base = load_knowledge(ROOT / "config.yaml", None, dt.date.today()).knowledge
    print(json.dumps(bench_synthetic(base, size, eval_messages(), budget)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shipped FAQ and 500 entries only, short budget")
    parser.add_argument("--size", type=int, help="(internal) one synthetic size, JSON on stdout")
    parser.add_argument("--budget", type=float, default=10.0, help="(internal) seconds of queries for --size")
    args = parser.parse_args()
    if args.size:
        _child(args.size, args.budget)
    else:
        run(args.quick)
