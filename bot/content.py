"""Reading config.yaml and faq/ from disk into one Knowledge version (the I/O edge of the core).

Loading also trains the learned ranker (bot/understanding/ranker.py). A trained model is cached as
plain arrays (numpy .npz, read with allow_pickle=False) in the model cache folder (config.yaml →
storage.model_cache), named by a hash of its training data and the ranker's code version, so a
restart with an unchanged FAQ loads it instead of training again. A cache file that is missing,
stale, unreadable or inconsistent is ignored (the model is trained again); a cache that cannot be
written costs only the next start-up's time.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.config import Config, config_warnings, load_config, model_cache_path
from bot.dialogue import Knowledge
from bot.faq import FAQ, load_faq
from bot.problems import ContentError, Problem, Problems
from bot.understanding import ranker

log = logging.getLogger("komek")
CACHE_PREFIX = "ranker-"


@dataclass(frozen=True)
class Loaded:
    knowledge: Knowledge
    warnings: tuple[Problem, ...]
    ranker_source: str = "trained"  # "trained" now, "cache" (this FAQ version's arrays), or "none"


def resolve_faq_dir(config: Config, config_path: Path, faq_dir: Path | None) -> Path:
    """--faq wins; else config's faq_dir, relative to the config file's folder."""
    if faq_dir is not None:
        return faq_dir
    path = Path(config.faq_dir)
    return path if path.is_absolute() else config_path.parent / path


def _cache_file(folder: Path, digest: str) -> Path:
    return folder / f"{CACHE_PREFIX}{digest[:32]}.npz"


def read_cached_model(folder: Path, digest: str) -> ranker.RankerModel | None:
    """The cached model for this training data, or None (missing, stale, corrupt: never raises)."""
    path = _cache_file(folder, digest)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            model = ranker.RankerModel.from_arrays(arrays)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: train again
        log.warning("ignoring the ranker cache %s: %s", path, exc)
        return None
    return model if model.digest == digest else None


def write_cached_model(folder: Path, model: ranker.RankerModel) -> None:
    """Store the model's arrays (atomically) and remove other versions; failures are only logged."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = _cache_file(folder, model.digest)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as out:
                np.savez(out, **model.arrays())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        for old in folder.glob(f"{CACHE_PREFIX}*.npz"):
            if old != target:
                old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not write the ranker cache in %s: %s", folder, exc)


def ranker_model(faq: FAQ, cache: Path | None, read_cache: bool = True) -> tuple[ranker.RankerModel | None, str]:
    """The learned ranker's model for this FAQ and where it came from ("cache": the arrays trained
    on exactly this FAQ version by this code; "trained" now, and cached; "none": a FAQ that gets no
    ranker). Raises ContentError when training fails."""
    if not ranker.trainable(faq):
        return None, "none"
    data = ranker.training_data(ranker.phrasings(faq))
    digest = data.digest()
    if cache is not None and read_cache:
        cached = read_cached_model(cache, digest)
        if cached is not None:
            return cached, "cache"
    try:
        model = ranker.train(data)
    except Exception as exc:  # the model could not be trained: this FAQ version is not served
        raise ContentError(
            [Problem("faq", 0, f"the learned ranker could not be trained on this FAQ: {type(exc).__name__}: {exc}")]
        ) from exc
    if cache is not None:
        write_cached_model(cache, model)
    return model, "trained"


def load_knowledge(config_path: Path, faq_dir: Path | None, today: dt.date, use_cache: bool = True) -> Loaded:
    """Load and check everything and build the ranker; raises ContentError with every problem when
    anything is wrong. `use_cache=False` trains the ranker whatever the cache holds (`check --retrain`)."""
    problems = Problems()
    config = load_config(config_path, problems)
    faq = load_faq(resolve_faq_dir(config, config_path, faq_dir), config, today, problems)
    config_warnings(config, problems)
    if problems.errors:
        raise ContentError(problems.errors)
    cache = model_cache_path(os.environ, config.storage, config_path.parent)
    model, source = ranker_model(faq, cache, read_cache=use_cache)
    loaded = Loaded(Knowledge.build(config, faq, model), tuple(problems.warnings), source)
    # The index is large, lives until the next reload and holds no reference cycles: keep the cyclic
    # garbage collector from walking it again and again (a full pass over a 10,000-entry index takes
    # about 0.1 s, paid by whichever message happens to trigger it). Plain reference counting still
    # frees it when a reload replaces it.
    gc.freeze()
    return loaded
