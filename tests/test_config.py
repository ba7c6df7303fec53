"""config.yaml: bad values are `file:line` problems; an empty hotline is a warning, not an error.

Bad configs are made from the real config.yaml (copied to tmp_path) by replacing one setting's value
with a regex, so the tests keep working while thresholds and contacts are tuned.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import CONFIG, ContentCopy, RunCli

from bot.config import Config, database_path, load_config
from bot.problems import ContentError, Problem, Problems


def break_setting(path: Path, key: str, value: str) -> int:
    """Replace the value of the first `key:` line in the file; return that line's number (1-based)."""
    lines = path.read_text("utf-8").splitlines(keepends=True)
    pattern = re.compile(rf"^(\s*{re.escape(key)}:)[^\n]*")
    for n, line in enumerate(lines):
        if pattern.match(line):
            lines[n] = pattern.sub(lambda m: f"{m.group(1)} {value}", line, count=1)
            path.write_text("".join(lines), "utf-8")
            return n + 1
    raise AssertionError(f"config.yaml has no '{key}:' line any more")


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(ContentError) as exc:
        load_config(path)
    return exc.value.problems


def test_real_config_loads(config: Config) -> None:
    assert config.languages == ("ru", "kk", "en")
    assert config.default_language in config.languages
    m = config.matcher
    assert 0 <= m.suggest_threshold <= m.answer_threshold <= 1
    assert config.contacts.office.hours.timezone == "Asia/Almaty"
    assert config.contacts.emergency["general"] == "112"


BAD_VALUES = [
    ("answer_threshold", "1.5", "'answer_threshold' must be a number from 0.0 to 1.0"),
    ("suggest_threshold", "-0.1", "'suggest_threshold' must be a number from 0.0 to 1.0"),
    ("max_suggestions", "9", "'max_suggestions' must be a whole number from 1 to 5"),
    ("timezone", "Asia/Almatyy", "unknown time zone 'Asia/Almatyy'"),
    ("timezone", "UTC+5", "unknown time zone 'UTC+5'"),
    ("timezone", "../../etc/passwd", "unknown time zone '../../etc/passwd'"),
    ("help_site", "htps://help.unhcr.org", "'help_site' is not a valid web address: 'htps://help.unhcr.org'"),
    ("legal_aid_site", "bureau.kz", "'legal_aid_site' is not a valid web address: 'bureau.kz'"),
    ("public_url", "http://exa mple.org/x", "'public_url' is not a valid web address"),
    ("days", "[mon, tue, wed, thu, fri, funday]", "unknown day 'funday'"),
    ("days", "[Monday]", "unknown day 'Monday'"),
    ("open", "9am", "'open' must be a time like 09:00"),
    ("close", "25:00", "'close' must be a time like 09:00"),
    ("port", "70000", "'port' must be a whole number from 1 to 65535"),
    ("default_language", "de", "'default_language' must be one of ['ru', 'kk', 'en']"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_VALUES, ids=[f"{k}={v}" for k, v, _ in BAD_VALUES])
def test_bad_value_is_a_problem_at_its_line(content_copy: ContentCopy, key: str, value: str, message: str) -> None:
    line = break_setting(content_copy.config, key, value)
    problems = problems_of(content_copy.config)
    hits = [str(p) for p in problems if message in p.message]
    assert hits, problems
    assert all(hit.startswith(f"{content_copy.config}:{line}: ") for hit in hits), hits


def test_every_bad_value_is_reported_at_once(content_copy: ContentCopy, cli: RunCli) -> None:
    lines = {
        "threshold": break_setting(content_copy.config, "answer_threshold", "2"),
        "zone": break_setting(content_copy.config, "timezone", "Mars/Olympus"),
        "url": break_setting(content_copy.config, "help_site", "not a url"),
        "day": break_setting(content_copy.config, "days", "[mon, someday]"),
    }
    result = cli("check", "--config", "config.yaml", cwd=content_copy.root)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert f"config.yaml:{lines['threshold']}: 'answer_threshold' must be a number from 0.0 to 1.0" in out
    assert f"config.yaml:{lines['zone']}: unknown time zone 'Mars/Olympus'" in out
    assert f"config.yaml:{lines['url']}: 'help_site' is not a valid web address: 'not a url'" in out
    assert f"config.yaml:{lines['day']}: unknown day 'someday'" in out
    assert "Traceback" not in result.stderr


def test_suggest_threshold_above_answer_threshold(content_copy: ContentCopy) -> None:
    line = break_setting(content_copy.config, "suggest_threshold", "0.9")
    break_setting(content_copy.config, "answer_threshold", "0.5")
    problems = problems_of(content_copy.config)
    assert any(p.line == line and "must not be above 'answer_threshold'" in p.message for p in problems)


def test_empty_emergency_number(content_copy: ContentCopy) -> None:
    police = break_setting(content_copy.config, "police", '""')
    problems = problems_of(content_copy.config)
    assert any(p.line == police and "'police' must be a text" in p.message for p in problems)


def test_yaml_syntax_error_in_config(content_copy: ContentCopy) -> None:
    line = break_setting(content_copy.config, "retention_days", "90 days: at most")
    problems = problems_of(content_copy.config)
    assert [(p.line, p.message) for p in problems] == [
        (
            line,
            f"line {line}: the text after 'retention_days:' holds ': ', which YAML reads as another key: put the "
            'whole text in quotes ("...")',
        ),
    ]


def rename_key(path: Path, key: str, new: str) -> int:
    """Rename the first `key:` of the file (a typo staff could make); return its line (1-based)."""
    lines = path.read_text("utf-8").splitlines(keepends=True)
    for n, line in enumerate(lines):
        if re.match(rf"^\s*{re.escape(key)}:", line):
            lines[n] = line.replace(f"{key}:", f"{new}:", 1)
            path.write_text("".join(lines), "utf-8")
            return n + 1
    raise AssertionError(f"config.yaml has no '{key}:' line any more")


# (real key, the typo, what check must say): a misspelt key used to be ignored without a word, so
# `admin:` left the bot with no admins and `retention_dayz:` kept questions for the default 90 days.
TYPOS = [
    ("admins", "admin", "'admin' is not a setting of 'telegram' (did you mean 'admins'?)"),
    ("retention_days", "retention_dayz", "'retention_dayz' is not a setting of 'storage' (did you mean 'retention_"),
    ("storage", "storag", "'storag' is not a setting of the top level (did you mean 'storage'?)"),
    ("answer_threshold", "answer_treshold", "of 'matcher' (did you mean 'answer_threshold'?)"),
    ("public_url", "publicurl", "'publicurl' is not a setting of 'telegram.webhook' (did you mean 'public_url'?)"),
    ("timezone", "time_zone", "of 'contacts.office.hours' (did you mean 'timezone'?)"),
    ("family_helpline", "family_hotline", "of 'contacts.emergency' (did you mean 'family_helpline'?)"),
    ("kk", "kz", "'kz' in 'contacts.office.name' is not one of the languages (did you mean 'kk'?)"),
]


@pytest.mark.parametrize(("key", "typo", "message"), TYPOS, ids=[t for _, t, _ in TYPOS])
def test_a_misspelt_key_is_reported_with_the_nearest_known_one(
    content_copy: ContentCopy, key: str, typo: str, message: str
) -> None:
    line = rename_key(content_copy.config, key, typo)
    problems = problems_of(content_copy.config)
    hits = [p for p in problems if message in p.message]
    assert hits, problems
    assert all(p.line == line for p in hits)
    assert "misspelt setting would be ignored" in hits[0].message or "languages" in hits[0].message


def test_a_key_unlike_any_known_one_is_reported_without_a_guess(content_copy: ContentCopy) -> None:
    text = content_copy.config.read_text("utf-8").replace("storage:\n", "storage:\n  colour: blue\n", 1)
    content_copy.config.write_text(text, "utf-8")
    problems = problems_of(content_copy.config)
    message = "'colour' is not a setting of 'storage': a misspelt setting would be ignored"
    assert [p.message for p in problems] == [message]


def test_config_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("- just\n- a list\n", "utf-8")
    problems = problems_of(path)
    assert problems[0] == Problem(str(path), 1, "config.yaml must be a block of settings")


def write_config(path: Path, hotline: list[dict[str, object]]) -> None:
    data = yaml.safe_load(CONFIG.read_text("utf-8"))
    data["contacts"]["hotline"] = hotline
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")


def test_empty_hotline_is_a_warning_not_an_error(content_copy: ContentCopy, cli: RunCli) -> None:
    write_config(content_copy.config, [])
    load_config(content_copy.config)  # no ContentError
    result = cli("check", "--config", "config.yaml", cwd=content_copy.root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "config.yaml:1: warning: contacts.hotline is empty" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("OK: ")
    quiet = cli("check", "--quiet", "--config", "config.yaml", cwd=content_copy.root)
    assert quiet.returncode == 0 and "warning" not in quiet.stdout.replace("warning(s)", "")


def test_filled_hotline_gives_no_warning_and_fills_the_placeholder(content_copy: ContentCopy, cli: RunCli) -> None:
    item: dict[str, object] = {
        "label": {"ru": "Горячая линия", "kk": "Жедел желі", "en": "Hotline"},
        "value": "+7 700 000 00 00",
    }
    write_config(content_copy.config, [item])
    config = load_config(content_copy.config)
    from bot.config import config_warnings
    from bot.faq import placeholder_values

    p = Problems()
    config_warnings(config, p)
    assert p.items == []
    assert placeholder_values(config, "en")["hotline"] == "Hotline: +7 700 000 00 00"
    assert placeholder_values(config, "en")["hotline_line"] == "• Hotline: +7 700 000 00 00"
    result = cli("check", "--config", "config.yaml", cwd=content_copy.root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "contacts.hotline is empty" not in result.stdout


def test_a_line_holding_only_an_empty_placeholder_is_removed() -> None:
    from bot.faq import fill

    text = "Contacts:\n{hotline_line}\n• Office: {office_phones}\n  {hotline_line}"
    assert fill(text, {"hotline_line": "", "office_phones": "1"}) == "Contacts:\n• Office: 1\n"
    assert fill(text, {"hotline_line": "• H: 2", "office_phones": "1"}) == "Contacts:\n• H: 2\n• Office: 1\n  • H: 2"
    # a placeholder inside a sentence stays a placeholder substitution, whatever its value
    assert fill("call {hotline_line} now", {"hotline_line": ""}) == "call  now"


def test_the_database_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    # as faq_dir is: a service manager that starts the bot in another folder finds the same data
    etc = tmp_path / "etc" / "komek"
    assert database_path({}, "komek.sqlite3", etc) == etc / "komek.sqlite3"
    assert database_path({}, "/var/lib/komek/komek.sqlite3", etc) == Path("/var/lib/komek/komek.sqlite3")
    assert database_path({"KOMEK_DB": " data/x.sqlite3 "}, "komek.sqlite3", etc) == Path("data/x.sqlite3")
    assert database_path({"KOMEK_DB": ""}, "komek.sqlite3", etc) == etc / "komek.sqlite3"
