"""Reading config.yaml and faq/ from disk into one Knowledge version (the I/O edge of the core).

Every version gets the learned ranker (bot/understanding/ranker.py) when its FAQ is trainable. A
trained model is cached as plain arrays in the model cache folder (config.yaml →
storage.model_cache; bot/understanding/build.py), named by a hash of its training data and the
ranker's code version, so a restart with an unchanged FAQ reads it instead of training again.

Where the model is trained when it is not cached (`load_knowledge(train=...)`):
- "here", in this process: the tools (`ask`, `eval`, `export`...), which answer once and exit;
- "child", in a child process, waited for: `check`, which thus trains exactly as the bot does;
- "later": the bot. The version is returned at once with the matcher alone and a `pending` model;
  `trained(loaded)` trains it in a child process (the serving process never imports scikit-learn
  or holds the training matrices) and returns the same version with its ranker, to swap in.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from bot.config import Config, config_warnings, load_config, model_cache_path
from bot.dialogue import Knowledge
from bot.faq import FAQ, load_faq
from bot.problems import ContentError, Problem, Problems
from bot.understanding import ranker
from bot.understanding.build import Build, BuildError, Built, read_cached_model, write_cached_model

log = logging.getLogger("komek")
Training = Literal["here", "child", "later"]
WARM_UP_DELAY = 3.0  # seconds after loading at which the bot works out the index's words (Index.warm_up)
__all__ = ["Loaded", "Pending", "load_knowledge", "ranker_model", "read_cached_model", "trained", "write_cached_model"]


@dataclass(frozen=True)
class Pending:
    """A learned ranker still to train for a version that serves with the matcher alone."""

    phrasings: tuple[ranker.Phrasing, ...]
    cache: Path


@dataclass(frozen=True)
class Loaded:
    knowledge: Knowledge
    warnings: tuple[Problem, ...]
    # "trained" (now), "cache" (this FAQ version's arrays), "none" (a FAQ that gets no ranker), or
    # "pending": the matcher alone until `trained` has trained the model in a child process
    ranker_source: str = "trained"
    pending: Pending | None = None
    # the child's figures when it trained the model (bot/understanding/build.py)
    build: Built | None = None


def resolve_faq_dir(config: Config, config_path: Path, faq_dir: Path | None) -> Path:
    """--faq wins; else config's faq_dir, relative to the config file's folder."""
    if faq_dir is not None:
        return faq_dir
    path = Path(config.faq_dir)
    return path if path.is_absolute() else config_path.parent / path


def ranker_model(faq: FAQ, cache: Path | None, read_cache: bool = True) -> tuple[ranker.RankerModel | None, str]:
    """The learned ranker's model for this FAQ and where it came from ("cache": the arrays trained
    on exactly this FAQ version by this code; "trained" now, in this process, and cached; "none": a
    FAQ that gets no ranker). Raises ContentError when training fails."""
    if not ranker.trainable(faq):
        return None, "none"
    items = ranker.phrasings(faq)
    if cache is not None and read_cache:
        cached = read_cached_model(cache, ranker.phrasings_digest(items))
        if cached is not None:
            return cached, "cache"
    try:
        model = ranker.train(ranker.training_data(items))
    except Exception as exc:  # the model could not be trained: this FAQ version is not served
        raise _training_failed(f"{type(exc).__name__}: {exc}") from exc
    if cache is not None:
        write_cached_model(cache, model)
    return model, "trained"


def _training_failed(reason: str) -> ContentError:
    return ContentError([Problem("faq", 0, f"the learned ranker could not be trained on this FAQ: {reason}")])


def cached_or_pending(
    faq: FAQ, cache: Path, read_cache: bool = True
) -> tuple[ranker.RankerModel | None, str, Pending | None]:
    """The model when this FAQ version's is cached ("cache"), none for a FAQ that gets none
    ("none"), or what a child process must train ("pending"). Never trains, never raises."""
    if not ranker.trainable(faq):
        return None, "none", None
    items = ranker.phrasings(faq)
    if read_cache:
        cached = read_cached_model(cache, ranker.phrasings_digest(items))
        if cached is not None:
            return cached, "cache", None
    return None, "pending", Pending(tuple(items), cache)


def trained(loaded: Loaded, builds: set[Build] | None = None) -> Loaded:
    """`loaded` with its learned ranker, trained now in a child process (bot/understanding/build.py)
    and read back from the cache. Blocks (call it in a thread from the bot); while it runs, the
    version serving keeps serving. `builds`: the running build is kept there while it runs, so a
    shutdown can stop it. When another process has cached this version's model meanwhile, that is
    read instead. Raises ContentError, the one problem `check` shows, when it fails."""
    pending = loaded.pending
    if pending is None:
        return loaded
    cached = read_cached_model(pending.cache, ranker.phrasings_digest(pending.phrasings))
    if cached is not None:  # e.g. the bot restarted after a network error, or a `check` trained it
        return replace(loaded, knowledge=loaded.knowledge.with_ranker(cached), ranker_source="cache", pending=None)
    build = Build(pending.phrasings, pending.cache)
    if builds is not None:
        builds.add(build)
    try:
        build.start()
        built = build.wait()
    except (BuildError, OSError) as exc:  # OSError: the child could not even be started
        raise _training_failed(str(exc)) from exc
    finally:
        if builds is not None:
            builds.discard(build)
    return replace(
        loaded,
        knowledge=loaded.knowledge.with_ranker(built.model),
        ranker_source="trained",
        pending=None,
        build=built,
    )


def load_knowledge(
    config_path: Path, faq_dir: Path | None, today: dt.date, use_cache: bool = True, train: Training = "here"
) -> Loaded:
    """Load and check everything and build the ranker; raises ContentError with every problem when
    anything is wrong. `use_cache=False` trains the ranker whatever the cache holds (`check --retrain`).
    `train`: where a model that is not cached is trained (see the module's docstring)."""
    problems = Problems()
    config = load_config(config_path, problems)
    faq = load_faq(resolve_faq_dir(config, config_path, faq_dir), config, today, problems)
    config_warnings(config, problems)
    if problems.errors:
        raise ContentError(problems.errors)
    cache = model_cache_path(os.environ, config.storage, config_path.parent)
    if train == "here":
        model, source = ranker_model(faq, cache, read_cache=use_cache)
        pending = None
    else:
        model, source, pending = cached_or_pending(faq, cache, read_cache=use_cache)
    # the bot answers its first message before the index has worked out every FAQ word (0.3 s of a
    # 1.5 s start-up budget): a thread does that a little later (at once, it would share the
    # interpreter with the start-up and slow it down as much)
    later = train == "later"
    loaded = Loaded(Knowledge.build(config, faq, model, warm=not later), tuple(problems.warnings), source, pending)
    if later:
        warm = threading.Timer(WARM_UP_DELAY, loaded.knowledge.index.warm_up)
        warm.daemon = True
        warm.start()
    if train == "child":
        loaded = trained(loaded)
    # The index is large, lives until the next reload and holds no reference cycles: keep the cyclic
    # garbage collector from walking it again and again (a full pass over a 10,000-entry index takes
    # about 0.1 s, paid by whichever message happens to trigger it). Plain reference counting still
    # frees it when a reload replaces it.
    gc.freeze()
    return loaded
