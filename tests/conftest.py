"""Shared fixtures: the real config and content, copies of them to break, and the real CLI.

Everything here works on real files (the repository's config.yaml and faq/, or copies in tmp_path);
nothing of our own code is mocked. Paths are relative to the repository root, found from this file.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from botapi_client import BotApiServer
from hypothesis import HealthCheck, settings

from bot.config import Config, load_config
from bot.content import load_knowledge
from bot.dialogue import Knowledge

ROOT = Path(__file__).parent.parent
CONFIG = ROOT / "config.yaml"
FAQ_DIR = ROOT / "faq"
DATA = Path(__file__).parent / "data"

# Property tests: no per-example deadline (a cold cache or a busy CI machine is not a bug), and a
# bounded number of examples so the whole suite stays well under a minute. For a longer hunt:
#   HYPOTHESIS_PROFILE=thorough .venv/bin/pytest -q     (2,000 examples per property, about 30 s)
settings.register_profile(
    "komek",
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", parent=settings.get_profile("komek"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "komek"))


# ------------------------------------------------------------------ the ranker's model cache
# Training the ranker on the real FAQ takes 6-9 s, and dozens of tests load a copy of it (in process,
# through the CLI, as a bot process). So every model trained during the run is kept in one store for
# the whole run, shared by the xdist workers (a folder beside theirs in pytest's temporary folder),
# and each FAQ version is trained once. The bot keeps only the latest version in its cache folder (it
# removes the others when it writes one), so KOMEK_MODEL_CACHE points at a folder of each worker's own,
# which is filled from the store (hard links) before and after every test, and whatever a test trained
# goes into the store. Files are written whole and never changed in place, so sharing them is safe.
# Tests of the cache itself pass their own folders. KOMEK_MODEL_CACHE set before pytest starts is used
# as the store (it then outlives the run).


def _link(source: Path, target: Path) -> None:
    """Put `source` at `target` (a hard link; a copy across file systems), atomically; never raises
    for a file that is already there or just went (another worker, a pruning bot)."""
    tmp = target.with_name(f".tmp-{uuid.uuid4().hex}")
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copy2(source, tmp)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)


def sync_model_cache(store: Path, cache: Path) -> None:
    """Models trained in `cache` go into `store`; models in `store` missing from `cache` come back."""
    have = {p.name for p in store.glob("ranker-*.npz")}
    for path in cache.glob("ranker-*.npz"):
        if path.name not in have:
            _link(path, store / path.name)
            have.add(path.name)
    for name in have - {p.name for p in cache.glob("ranker-*.npz")}:
        _link(store / name, cache / name)


@pytest.fixture(scope="session", autouse=True)
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the run's store of trained models, this worker's KOMEK_MODEL_CACHE folder)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = tmp_path_factory.getbasetemp()
    run = base.parent if worker else base  # the workers' folders are inside the run's
    preset = os.environ.get("KOMEK_MODEL_CACHE", "").strip()
    store = Path(preset) if preset else run / "ranker-store"
    store.mkdir(parents=True, exist_ok=True)
    cache = base / "ranker-cache"
    cache.mkdir(exist_ok=True)
    sync_model_cache(store, cache)
    previous = os.environ.get("KOMEK_MODEL_CACHE")
    os.environ["KOMEK_MODEL_CACHE"] = str(cache)  # the CLI's and the bot's child processes inherit it
    _train_the_shipped_faq_once(store, cache)
    yield store, cache
    sync_model_cache(store, cache)
    if previous is None:
        os.environ.pop("KOMEK_MODEL_CACHE", None)
    else:
        os.environ["KOMEK_MODEL_CACHE"] = previous


def _train_the_shipped_faq_once(store: Path, cache: Path) -> None:
    """The shipped FAQ's model, trained by the first worker while the others wait for it (a lock in
    the store): without it every worker that starts with a test of the real FAQ trains the same model
    at the same time, each twice as slowly, about 10 s of the run."""
    with (store / ".shipped.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            sync_model_cache(store, cache)
            load_knowledge(CONFIG, None, dt.date.today())  # reads the model, or trains it into `cache`
            sync_model_cache(store, cache)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _share_trained_models(model_store: tuple[Path, Path]) -> Iterator[None]:
    sync_model_cache(*model_store)
    yield
    sync_model_cache(*model_store)


def child_env() -> dict[str, str]:
    """This process's environment for a bot child process, less every TELEGRAM_ and KOMEK_ setting
    except the run's model cache (a test of the environment sets its own on top)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "KOMEK_"))}
    if os.environ.get("KOMEK_MODEL_CACHE"):
        env["KOMEK_MODEL_CACHE"] = os.environ["KOMEK_MODEL_CACHE"]
    return env


@pytest.fixture(scope="module")
def botapi_server() -> Iterator[BotApiServer]:
    """The Bot API emulator (tests/botapi/launcher.js) on a free port of 127.0.0.1, one per test
    module; afterwards it must not have recorded a crash of its own."""
    with BotApiServer() as server:
        yield server
        health = httpx.get(f"{server.url}/control/health", timeout=5).json()["result"]
        assert health["internal_errors"] == [], server.log_text()


@pytest.fixture(scope="session")
def config() -> Config:
    """The real config.yaml, validated."""
    return load_config(CONFIG)


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    """The real config and FAQ, loaded and indexed once for the whole run."""
    return load_knowledge(CONFIG, None, dt.date.today()).knowledge


@dataclass(frozen=True)
class ContentCopy:
    """A copy of the content in a temporary folder: `root/config.yaml` and `root/faq/`."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def faq(self) -> Path:
        return self.root / "faq"


def copy_content(dest: Path, faq_files: Path | None = None) -> ContentCopy:
    """Copy config.yaml and faq/ into `dest`.

    With `faq_files` (a folder of section files, e.g. one sample of tests/data/broken/), the copy's
    faq/ holds those section files plus the real ui.yaml instead of the real sections.
    """
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(CONFIG, dest / "config.yaml")
    faq = dest / "faq"
    if faq_files is None:
        shutil.copytree(FAQ_DIR, faq)
    else:
        faq.mkdir()
        for path in sorted(faq_files.iterdir()):
            if path.is_file():
                shutil.copy2(path, faq / path.name)
        shutil.copy2(FAQ_DIR / "ui.yaml", faq / "ui.yaml")
    return ContentCopy(dest)


@pytest.fixture
def content_copy(tmp_path: Path) -> ContentCopy:
    """A fresh copy of the real config.yaml and faq/ in tmp_path, free to break."""
    return copy_content(tmp_path / "content")


RunCli = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(
    *args: str | Path,
    cwd: Path = ROOT,
    stdin: str | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` in a child process (the interpreter running the tests), text in and out;
    `env`: variables to set on top of this process's."""
    extra = env or {}
    env = dict(os.environ)
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("TELEGRAM_BOT_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *map(str, args)],
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def cli() -> RunCli:
    """Run `python -m bot ...` (see run_cli): cwd, stdin, timeout and env are keyword arguments."""
    return run_cli
