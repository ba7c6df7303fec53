"""The learned ranker's model: its cache of arrays, and training it in a child process.

Training (bot/understanding/ranker.py → `train`) imports scikit-learn and builds a sparse matrix of
every phrasing and its noisy copies: about 7 s and 250-300 MB for the shipped FAQ, against a
serving process of about 120 MB. So the bot never trains in its own process: it starts serving
with the matcher alone, and

    python -m bot.understanding.build CACHE_FOLDER

trains in a child (`Build`). The parent writes the FAQ's phrasings and their digest to the child's
stdin as JSON; the child makes the noisy copies, trains, writes the model's arrays into a folder of
the parent's (`.npz`, read there with allow_pickle=False and checked to be the model of exactly the
phrasings sent, then removed), copies the file into the cache folder (what a restart reads) and
prints one JSON line on stdout, {"ok": true, "file": ..., "cached": ..., "seconds": ...,
"peak_rss_mb": ..., "cpu_seconds": ...} or {"ok": false, "error": ...}. The hand-over file is the parent's own, so
another process writing the shared cache (a `check` of another FAQ version removes the other
versions) cannot take it away; a cache that cannot be written costs only the next start's training.

The cache: a model is stored as plain arrays (numpy .npz, never pickles) named by a hash of its
training data and the ranker's code version, so a restart with an unchanged FAQ reads it instead
of training again. A file that is missing, stale, unreadable or inconsistent is ignored (the model
is trained again); a cache that cannot be written costs only the next start-up's training time.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.understanding import ranker

log = logging.getLogger("komek")
CACHE_PREFIX = "ranker-"
# a build that takes longer is stopped (and counts as failed): the shipped FAQ trains in under 10 s,
# a FAQ of MAX_ENTRIES entries in about 30 s; KOMEK_BUILD_TIMEOUT (seconds) changes it
BUILD_TIMEOUT = 600.0
ERROR_TAIL = 400  # characters of the child's stderr shown when it ended without saying why


class BuildError(Exception):
    """The model could not be trained; the message says why, in words for staff."""


def cache_file(folder: Path, digest: str) -> Path:
    return folder / f"{CACHE_PREFIX}{digest[:32]}.npz"


def read_model_file(path: Path) -> ranker.RankerModel:
    """A model's arrays from an .npz file (never unpickles anything); raises OSError or ValueError."""
    with np.load(path, allow_pickle=False) as arrays:
        return ranker.RankerModel.from_arrays(arrays)


def read_cached_model(folder: Path, digest: str) -> ranker.RankerModel | None:
    """The cached model for this training data, or None (missing, stale, corrupt: never raises)."""
    path = cache_file(folder, digest)
    try:
        model = read_model_file(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign file: train again
        log.warning("ignoring the ranker cache %s: %s", path, exc)
        return None
    return model if model.digest == digest else None


def _write_npz(folder: Path, target: Path, model: ranker.RankerModel) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **model.arrays())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _remove_other_versions(folder: Path, target: Path) -> None:
    for old in folder.glob(f"{CACHE_PREFIX}*.npz"):
        if old != target:
            old.unlink(missing_ok=True)


def write_cached_model(folder: Path, model: ranker.RankerModel) -> Path | None:
    """Store the model's arrays (atomically) and remove other versions: the file written, or None
    when the folder cannot be written (only logged)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = cache_file(folder, model.digest)
        _write_npz(folder, target, model)
        _remove_other_versions(folder, target)
    except OSError as exc:
        log.warning("could not write the ranker cache in %s: %s", folder, exc)
        return None
    return target


def install_cached_file(folder: Path, source: Path, digest: str) -> Path | None:
    """Copy a model's .npz file into the cache (atomically) and remove other versions: the file
    written, or None when the folder cannot be written (only logged)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = cache_file(folder, digest)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _remove_other_versions(folder, target)
    except OSError as exc:
        log.warning("could not write the ranker cache in %s: %s", folder, exc)
        return None
    return target


def build_timeout(environ: Mapping[str, str]) -> float:
    """KOMEK_BUILD_TIMEOUT (seconds above 0) or BUILD_TIMEOUT."""
    raw = environ.get("KOMEK_BUILD_TIMEOUT", "").strip()
    try:
        value = float(raw) if raw else BUILD_TIMEOUT
    except ValueError:
        value = BUILD_TIMEOUT
    return value if value > 0 else BUILD_TIMEOUT


@dataclass(frozen=True)
class Built:
    """A model trained by the child, with the child's own figures."""

    model: ranker.RankerModel
    seconds: float  # the child's own time, from reading the data to the model written
    peak_rss_mb: float  # the child's peak resident memory
    cpu_seconds: float  # the child's CPU time, imports included (what its wall time is on an idle core)
    cached: bool  # written to the cache folder (False: it could not be written)
    wall_seconds: float = 0.0  # from starting the child to the model read back (imports included)


def _payload(items: Sequence[ranker.Phrasing], digest: str) -> bytes:
    return json.dumps({"phrasings": items, "digest": digest}, ensure_ascii=False).encode()


class Build:
    """Training one model in a child process: `start()`, then `wait()` (blocks: from a thread in
    the bot) for the model, or `cancel()` (any thread) to stop the child."""

    def __init__(self, items: Sequence[ranker.Phrasing], cache: Path, timeout: float | None = None) -> None:
        self.items = items
        self.digest = ranker.phrasings_digest(items)
        self.cache = cache
        self.timeout = build_timeout(os.environ) if timeout is None else timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._cancelled = False
        self._started = 0.0
        self._handover: Path | None = None  # the child writes the model here; removed after reading

    def start(self) -> None:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent.parent)  # the folder that holds `bot`
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        with self._lock:
            if self._cancelled:
                raise BuildError("the build was cancelled")
            self._started = time.perf_counter()
            self._handover = Path(tempfile.mkdtemp(prefix="komek-build-"))
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "bot.understanding.build", str(self.cache), str(self._handover)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )

    def wait(self) -> Built:
        """The trained model; raises BuildError with the reason when the child did not make one."""
        proc, handover = self._proc, self._handover
        assert proc is not None and handover is not None, "start() first"
        try:
            try:
                out, err = proc.communicate(_payload(self.items, self.digest), timeout=self.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise BuildError(f"the build process took longer than {self.timeout:g} s and was stopped") from None
            except (BrokenPipeError, ValueError):  # the child died (or was cancelled) before reading
                out, err = b"", b""
                proc.wait()
            return self._result(proc.returncode, out, err, handover)
        finally:
            shutil.rmtree(handover, ignore_errors=True)

    def cancel(self) -> None:
        """Stop the child (the bot is shutting down); `wait` then raises BuildError."""
        with self._lock:
            self._cancelled = True
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()

    def _result(self, code: int, out: bytes, err: bytes, handover: Path) -> Built:
        said: dict[str, Any] = {}
        for line in reversed(out.decode("utf-8", "replace").splitlines()):
            try:
                said = json.loads(line)
            except ValueError:
                continue
            if isinstance(said, dict):
                break
            said = {}
        if self._cancelled:
            raise BuildError("the build was cancelled")
        if said.get("ok") is False:
            raise BuildError(str(said.get("error")))
        if code != 0 or "file" not in said:
            how = f"was killed by signal {-code}" if code < 0 else f"ended with exit code {code}"
            hint = " (out of memory?)" if code == -9 else ""
            tail = err.decode("utf-8", "replace").strip()[-ERROR_TAIL:]
            raise BuildError(f"the build process {how}{hint}" + (f": {tail}" if tail else ""))
        path = cache_file(handover, self.digest)  # the only file read: never a path the child names
        try:
            model = read_model_file(path)
        except (OSError, ValueError) as exc:
            raise BuildError(f"the model the build process wrote cannot be read: {exc}") from None
        if model.digest != self.digest:
            raise BuildError(f"the build process wrote a model of other training data ({path})")
        return Built(
            model,
            float(said.get("seconds", 0.0)),
            float(said.get("peak_rss_mb", 0.0)),
            float(said.get("cpu_seconds", 0.0)),
            bool(said.get("cached")),
            round(time.perf_counter() - self._started, 3),
        )


def train_in_child(items: Sequence[ranker.Phrasing], cache: Path, timeout: float | None = None) -> Built:
    """Train on these phrasings in a child process and wait for it (blocks); raises BuildError."""
    build = Build(items, cache, timeout)
    build.start()
    return build.wait()


def _usage() -> tuple[float, float]:
    """This process's peak RSS (MB) and CPU seconds so far; zeros where `resource` is missing."""
    try:
        import resource
    except ImportError:  # not on Linux or macOS: no figures
        return 0.0, 0.0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return round(peak, 1), round(usage.ru_utime + usage.ru_stime, 3)


def child(argv: list[str]) -> int:
    """The child's side: the phrasings on stdin; the model's file in the hand-over folder and the
    cache; one JSON line on stdout."""
    if len(argv) != 2:
        print("usage: python -m bot.understanding.build CACHE_FOLDER HANDOVER_FOLDER", file=sys.stderr)
        return 2
    cache, handover = Path(argv[0]), Path(argv[1])
    started = time.perf_counter()
    try:
        payload = json.loads(sys.stdin.buffer.read())
        data = ranker.training_data((str(e), str(k), str(t)) for e, k, t in payload["phrasings"])
        if data.digest() != payload["digest"]:
            raise ValueError("the phrasings arrived changed (digests differ)")
        del payload
        model = ranker.train(data)
        path = cache_file(handover, model.digest)
        _write_npz(handover, path, model)
    except Exception as exc:  # said in one line; the parent keeps serving what it has
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    cached = install_cached_file(cache, path, model.digest) is not None
    seconds = round(time.perf_counter() - started, 3)
    peak, cpu = _usage()
    said = {"ok": True, "file": str(path), "cached": cached, "seconds": seconds}
    said |= {"peak_rss_mb": peak, "cpu_seconds": cpu}
    print(json.dumps(said), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(child(sys.argv[1:]))
