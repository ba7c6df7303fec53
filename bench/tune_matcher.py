"""Grid search of the matcher's score shape and decision thresholds on a labelled set.

Tune on tests/data/eval.yaml only; then read the held-out figure once with
`python -m bot eval tests/data/eval_holdout.yaml`. Prints the best settings by min(top-1, rejection).
Usage: .venv/bin/python bench/tune_matcher.py [tests/data/eval.yaml]
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from pathlib import Path

from bot.content import load_knowledge
from bot.evaluation import parse_items
from bot.matcher import Index, MatcherParams
from bot.understanding.crisis import detect
from bot.yamlio import read_yaml


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/eval.yaml")
    k = load_knowledge(Path("config.yaml"), None, dt.date.today()).knowledge
    items = parse_items(read_yaml(path))
    results = []
    for a, u, x, g in itertools.product((0.6,), (2.0, 2.5, 3.0), (0.0,), (0.5, 0.6)):
        params = MatcherParams(coverage_weight=a, unknown_weight=u, whole_weight=x, ngram_weight=g)
        index = Index(k.faq, params)
        rows = []
        for it in items:
            alarm = detect(it.q)
            content = index.content_terms(it.q)
            cands = index.match(it.q, 5) if (content or alarm) else []
            rows.append((it, alarm, content, cands))
        for at, margin, st, cov in itertools.product(
            [v / 100 for v in range(27, 60, 3)],
            (0.0, 0.02, 0.04),
            (0.3, 0.35, 0.4, 0.45),
            (0.0, 0.4, 0.5, 0.6),
        ):
            if st > at:
                continue
            t1 = n_in = rej = n_off = t3 = direct = direct_ok = 0
            for it, alarm, content, cands in rows:
                top = cands[0] if cands else None
                second = cands[1] if len(cands) > 1 else None
                if alarm is not None:
                    kind, got = "urgent", (top.entry_id if top and top.score >= at else alarm.entry_id)
                    sugg: list[str] = []
                elif not content or top is None or top.score < st:
                    kind, got, sugg = "fallback", None, []
                elif top.score >= at and top.coverage >= cov and (second is None or top.score - second.score >= margin):
                    kind, got, sugg = "answer", top.entry_id, []
                else:
                    floor = max(st, top.score - 0.25)
                    kind, got, sugg = "suggest", None, [c.entry_id for c in cands if c.score >= floor][:3]
                if it.expect is None:
                    n_off += 1
                    rej += kind == "fallback"
                else:
                    n_in += 1
                    shown = ([got] if got else []) + sugg
                    t1 += bool(shown) and shown[0] == it.expect
                    t3 += it.expect in shown[:3]
                    direct += got is not None
                    direct_ok += got == it.expect
            precision = direct_ok / direct if direct else 0.0
            results.append(
                (
                    round(min(t1 / n_in, rej / n_off), 3),
                    round(precision, 3),
                    t1 / n_in,
                    rej / n_off,
                    t3 / n_in,
                    direct / n_in,
                    a,
                    u,
                    x,
                    g,
                    at,
                    margin,
                    st,
                    cov,
                )
            )
    results.sort(reverse=True)
    print("min    d.prec top1   reject top3   direct cov_w unk_w whole ngram answer margin suggest min_cov")
    for r in results[:15]:
        print("  ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in r))


if __name__ == "__main__":
    main()
