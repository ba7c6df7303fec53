"""Reading config.yaml and faq/ from disk into one Knowledge version (the I/O edge of the core)."""

from __future__ import annotations

import datetime as dt
import gc
from dataclasses import dataclass
from pathlib import Path

from bot.config import Config, config_warnings, load_config
from bot.dialogue import Knowledge
from bot.faq import load_faq
from bot.problems import ContentError, Problem, Problems


@dataclass(frozen=True)
class Loaded:
    knowledge: Knowledge
    warnings: tuple[Problem, ...]


def resolve_faq_dir(config: Config, config_path: Path, faq_dir: Path | None) -> Path:
    """--faq wins; else config's faq_dir, relative to the config file's folder."""
    if faq_dir is not None:
        return faq_dir
    path = Path(config.faq_dir)
    return path if path.is_absolute() else config_path.parent / path


def load_knowledge(config_path: Path, faq_dir: Path | None, today: dt.date) -> Loaded:
    """Load and check everything; raises ContentError with every problem when anything is wrong."""
    problems = Problems()
    config = load_config(config_path, problems)
    faq = load_faq(resolve_faq_dir(config, config_path, faq_dir), config, today, problems)
    config_warnings(config, problems)
    if problems.errors:
        raise ContentError(problems.errors)
    loaded = Loaded(Knowledge.build(config, faq), tuple(problems.warnings))
    # The index is large, lives until the next reload and holds no reference cycles: keep the cyclic
    # garbage collector from walking it again and again (a full pass over a 10,000-entry index takes
    # about 0.1 s, paid by whichever message happens to trigger it). Plain reference counting still
    # frees it when a reload replaces it.
    gc.freeze()
    return loaded
