"""The learned ranker trained in a child process (bot/understanding/build.py): the bot serves with the
matcher alone from its first message and swaps in the same version with its ranker once the child
has trained it; a child that fails leaves the serving version alone and the admins are told.

Real child processes throughout, on a two-entry FAQ (tests/data/broken/valid) that trains in about a
second, or on a dozen phrasings; the shipped FAQ is never trained here."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from botapi_client import BotApiServer, SimUser
from conftest import DATA, ContentCopy, RunCli, copy_content
from test_bot import last, new_env, running
from test_ranker import SMALL

from bot.content import load_knowledge, read_cached_model, trained
from bot.dialogue import reply_to_text
from bot.handlers import Services
from bot.understanding import ranker
from bot.understanding.build import Build, BuildError, train_in_child
from bot.understanding.pipeline import Understanding

TODAY = dt.date(2027, 1, 1)  # after the sample's reviewed dates
ADMIN = SimUser(id=700000101, first_name="Staff", language_code="en")
USER = SimUser(id=555200001, first_name="Aida", language_code="ru")
QUESTION = "как подать на убежище"


def tiny_content(tmp_path: Path) -> ContentCopy:
    """Two entries (asylum-apply, hotline), an admin to alert."""
    content = copy_content(tmp_path / "content", faq_files=DATA / "broken" / "valid")
    text = content.config.read_text(encoding="utf-8").replace("  admins: []", f"  admins: [{ADMIN.id}]")
    content.config.write_text(text, encoding="utf-8")
    return content


async def until(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_the_child_trains_the_same_model_as_this_process_and_caches_it_without_pickles(tmp_path: Path) -> None:
    data = ranker.training_data(SMALL)
    built = train_in_child(SMALL, tmp_path / "cache")
    here = ranker.train(data)
    assert built.cached and built.peak_rss_mb > 0 and built.cpu_seconds > 0 and built.wall_seconds >= built.seconds > 0
    assert built.model.digest == here.digest == data.digest()
    assert np.array_equal(built.model.weights, here.weights) and built.model.vocab == here.vocab
    (path,) = (tmp_path / "cache").glob("ranker-*.npz")
    with np.load(path, allow_pickle=False) as arrays:  # plain arrays: no object needs unpickling
        assert {a.dtype.kind for a in (arrays[name] for name in arrays.files)} <= {"u", "i", "f"}
    cached = read_cached_model(tmp_path / "cache", data.digest())
    assert cached is not None and np.array_equal(cached.weights, here.weights)


def test_a_cache_folder_that_cannot_be_written_still_hands_the_model_over(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    built = train_in_child(SMALL, blocker / "cache")
    assert not built.cached and built.model.classes == ("apply", "passport", "school")


def test_a_training_error_in_the_child_is_one_clear_line(tmp_path: Path) -> None:
    one_entry = [e for e in SMALL if e[0] == "apply"]
    with pytest.raises(BuildError, match="ValueError: the ranker needs at least two entries"):
        train_in_child(one_entry, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.npz"))


def test_a_child_that_takes_too_long_is_stopped(tmp_path: Path) -> None:
    build = Build(SMALL, tmp_path / "cache", timeout=0.05)
    build.start()
    with pytest.raises(BuildError, match=r"took longer than 0.05 s and was stopped"):
        build.wait()


def test_check_fails_clearly_when_the_model_cannot_be_built(cli: RunCli, tmp_path: Path) -> None:
    content = tiny_content(tmp_path)
    env = {"KOMEK_MODEL_CACHE": str(tmp_path / "empty-cache"), "KOMEK_BUILD_TIMEOUT": "0.001"}
    result = cli("check", "--quiet", "--config", content.config, env=env)
    assert result.returncode == 1
    assert "faq:0: the learned ranker could not be trained on this FAQ: the build process took longer" in result.stdout
    assert "FAIL: 1 error(s)" in result.stdout


def test_a_two_entry_faq_gets_a_ranker_that_ranks_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOMEK_MODEL_CACHE", str(tmp_path / "cache"))
    loaded = load_knowledge(tiny_content(tmp_path).config, None, TODAY, train="child")
    r = loaded.knowledge.understanding.ranker
    assert loaded.ranker_source == "trained" and r is not None
    assert [e for e, _ in r.rank("горячая линия телефон", 5)] == ["hotline", "asylum-apply"]
    assert r.rank(QUESTION, 1)[0][0] == "asylum-apply"


def test_a_model_cached_meanwhile_by_another_process_is_read_not_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOMEK_MODEL_CACHE", str(tmp_path / "cache"))
    content = tiny_content(tmp_path)
    waiting = load_knowledge(content.config, None, TODAY, train="later")
    assert waiting.ranker_source == "pending"
    load_knowledge(content.config, None, TODAY)  # e.g. a `check` or another start trains it meanwhile
    done = trained(waiting)
    assert done.ranker_source == "cache" and done.build is None and done.knowledge.understanding.ranker is not None


@pytest.mark.e2e
async def test_the_bot_answers_with_the_matcher_until_the_child_has_trained_the_ranker(
    botapi_server: BotApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("KOMEK_MODEL_CACHE", str(cache))  # empty: the first start after a FAQ change
    content = tiny_content(tmp_path)
    loaded = load_knowledge(content.config, None, TODAY, train="later")
    assert loaded.ranker_source == "pending" and loaded.knowledge.understanding.ranker is None
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    caplog.set_level(logging.INFO, logger="komek")
    async with running(loaded, env, botapi_server, config=content.config) as bot:
        u, svc = bot.user, bot.app.bot_data["services"]
        assert isinstance(svc, Services)
        await u.send_message(USER.id, QUESTION, USER)
        first = await last(u, USER.id, 1)
        assert svc.knowledge is loaded.knowledge  # answered by the matcher alone: the child still trains
        assert "местное управление занятости" in first["text"]
        await until(lambda: svc.knowledge.understanding.ranker is not None)
        k = svc.knowledge
        assert k.faq is loaded.knowledge.faq and k.index is loaded.knowledge.index  # the same version
        assert isinstance(k.understanding, Understanding) and k.understanding.engine == "combined"
        assert reply_to_text(k, "позвонить", "ru").score > reply_to_text(loaded.knowledge, "позвонить", "ru").score
        await u.send_message(USER.id, QUESTION, USER)
        assert (await last(u, USER.id, 2))["text"] == first["text"]
    assert any("ranker ready after" in r.getMessage() for r in caplog.records)
    assert len(list(cache.glob("ranker-*.npz"))) == 1
    again = load_knowledge(content.config, None, TODAY, train="later")  # the next start: read from the cache
    assert again.ranker_source == "cache" and again.pending is None
    assert again.knowledge.understanding.ranker is not None


@pytest.mark.e2e
async def test_a_failed_training_keeps_the_serving_version_and_tells_the_admins(
    botapi_server: BotApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_staff import run_reload_job

    monkeypatch.setenv("KOMEK_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KOMEK_BUILD_TIMEOUT", "0.001")  # every child is stopped before it trains
    content = tiny_content(tmp_path)
    loaded = load_knowledge(content.config, None, TODAY, train="later")
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    async with running(loaded, env, botapi_server, config=content.config) as bot:
        u, svc = bot.user, bot.app.bot_data["services"]
        # at start-up: the matcher keeps answering alone, and the admins are told why
        alert = await last(u, ADMIN.id, 1)
        assert "could not be trained; the bot answers with the matcher alone" in alert["text"]
        assert "took longer than 0.001 s" in alert["text"]
        assert svc.knowledge is loaded.knowledge and svc.knowledge.understanding.ranker is None
        # a live reload of a new version whose ranker cannot be trained: refused, the old one serves
        asylum = content.faq / "asylum.yaml"
        marked = asylum.read_text(encoding="utf-8").replace("куда идти за статусом беженца", "куда идти за убежищем")
        asylum.write_text(marked, encoding="utf-8")
        await run_reload_job(bot.app)
        alert = await last(u, ADMIN.id, 2)
        assert "FAQ not reloaded, the bot keeps the last good version" in alert["text"]
        assert "the learned ranker could not be trained on this FAQ" in alert["text"]
        assert svc.knowledge is loaded.knowledge
        await u.send_message(USER.id, QUESTION, USER)
        assert "местное управление занятости" in (await last(u, USER.id, 1))["text"]


def _build_children() -> list[int]:
    """This process's children that are ranker builds (Linux /proc)."""
    found = []
    for tasks in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (tasks / "children").read_text().split():
            try:
                if b"bot.understanding.build" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
            except OSError:  # ended meanwhile
                pass
    return found


@pytest.mark.e2e
async def test_stopping_the_bot_stops_its_build_without_an_alert(
    botapi_server: BotApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOMEK_MODEL_CACHE", str(tmp_path / "cache"))
    content = tiny_content(tmp_path)
    loaded = load_knowledge(content.config, None, TODAY, train="later")
    env = new_env(botapi_server, tmp_path / "komek.sqlite3")
    async with running(loaded, env, botapi_server, config=content.config) as bot:
        svc = bot.app.bot_data["services"]
        await until(lambda: bool(_build_children()), 30)
    await until(lambda: not _build_children() and not svc.extra.get("builds"), 10)  # killed, its thread done
    assert svc.knowledge is loaded.knowledge
    async with botapi_server.client(env.token) as u:
        assert await u.bot_messages(ADMIN.id) == []  # stopped, not failed: nobody is alerted
