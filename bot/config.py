"""config.yaml as frozen dataclasses, validated section by section.

Secrets never live here: the token and the pseudonym key come from the environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.problems import ContentError, Problems, did_you_mean
from bot.yamlio import LineDict, LineList, YamlProblem, control_characters, read_yaml

URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:\d+)?(/[^\s<>\"{}]*)?$")
LANG_RE = re.compile(r"^[a-z]{2}$")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

Localized = dict[str, str]


@dataclass(frozen=True)
class MatcherConfig:
    answer_threshold: float = 0.60
    margin: float = 0.06
    suggest_threshold: float = 0.40
    min_coverage: float = 0.0
    max_suggestions: int = 3
    # A long message scores low (its story words dilute it) yet may hold plenty of topic words: when
    # the top entry explains at least this many top-weight words' worth of it, offer "did you mean".
    suggest_evidence: float = 2.4
    suggest_evidence_fit: float = 0.7


@dataclass(frozen=True)
class StorageConfig:
    database: str = "komek.sqlite3"
    retention_days: int = 90
    model_cache: str = ""  # folder for the trained ranker's arrays; "" = `komek-cache` beside the database


@dataclass(frozen=True)
class WebhookConfig:
    listen: str = "127.0.0.1"
    port: int = 8443
    path: str = "/telegram"
    public_url: str = ""


@dataclass(frozen=True)
class TelegramConfig:
    flood_messages_per_minute: int = 20
    webhook: WebhookConfig = WebhookConfig()
    admins: tuple[int, ...] = ()
    operators_chat: int | None = None


@dataclass(frozen=True)
class Hours:
    timezone: str
    days: tuple[str, ...]
    open: str
    close: str


@dataclass(frozen=True)
class Office:
    name: Localized
    address: Localized
    phones: tuple[str, ...]
    hours: Hours


@dataclass(frozen=True)
class HotlineItem:
    label: Localized
    value: str


@dataclass(frozen=True)
class AsylumOffice:
    city: Localized
    address: Localized


@dataclass(frozen=True)
class Contacts:
    help_site: str
    help_asylum: str
    help_stateless: str
    office: Office
    hotline: tuple[HotlineItem, ...]
    emergency: dict[str, str]
    asylum_offices: tuple[AsylumOffice, ...]
    igo_email: str
    igo_phone: str
    legal_aid_site: str


@dataclass(frozen=True)
class Config:
    languages: tuple[str, ...]
    default_language: str
    faq_dir: str
    matcher: MatcherConfig
    storage: StorageConfig
    telegram: TelegramConfig
    contacts: Contacts
    source: str = "config.yaml"


EMERGENCY_KEYS = ("general", "police", "ambulance", "fire", "family_helpline")


class _Reader:
    """Reads typed values out of LineDicts, recording a problem (with its line) for each bad one.

    It also remembers which keys of each block it asked for: whatever else a block holds is a key
    the bot does not know (`admin:` for `admins:`), reported by `unknown_keys` with the nearest
    known one, since a misspelt setting would otherwise be ignored without a word."""

    def __init__(self, file: str, problems: Problems) -> None:
        self.file = file
        self.p = problems
        self.asked: dict[int, set[str]] = {}
        self.blocks: list[tuple[str, LineDict, str]] = []  # (where, block, what its keys are)
        self.names: dict[int, str] = {}

    def ask(self, d: LineDict, key: str) -> Any:
        """The raw value of `key` (None when absent), noted as a key the bot knows."""
        self.asked.setdefault(id(d), set()).add(key)
        return d.get(key)

    def block(self, d: LineDict, where: str, kind: str = "setting") -> LineDict:
        """Check the keys of `d` (named `where`, e.g. 'telegram.webhook') against those asked for."""
        self.names[id(d)] = where
        self.blocks.append((where, d, kind))
        return d

    def unknown_keys(self) -> None:
        for where, d, kind in self.blocks:
            known = self.asked.get(id(d), set())
            for key in d:
                if key in known:
                    continue
                hint = did_you_mean(key, known)
                if kind == "language":
                    self.p.error(self.file, d.line_of(key), f"'{key}' in {where} is not one of the languages{hint}")
                else:
                    place = f"'{where}'" if where else "the top level"
                    self.p.error(
                        self.file,
                        d.line_of(key),
                        f"'{key}' is not a setting of {place}{hint}: a misspelt setting would be ignored",
                    )

    def section(self, parent: LineDict, key: str, required: bool = True) -> LineDict:
        value = self.ask(parent, key)
        if isinstance(value, LineDict):
            outer = self.names.get(id(parent), "")
            return self.block(value, f"{outer}.{key}" if outer else key)
        if value is not None or required:
            self.p.error(self.file, parent.line_of(key), f"'{key}' must be a block of settings")
        empty = LineDict()
        empty.line = parent.line_of(key)
        empty.key_lines = {}
        return empty

    def number(self, d: LineDict, key: str, default: float, lo: float, hi: float) -> float:
        self.ask(d, key)
        value = d.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            self.p.error(self.file, d.line_of(key), f"'{key}' must be a number from {lo} to {hi}")
            return default
        return float(value)

    def integer(self, d: LineDict, key: str, default: int, lo: int, hi: int) -> int:
        self.ask(d, key)
        value = d.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.p.error(self.file, d.line_of(key), f"'{key}' must be a whole number from {lo} to {hi}")
            return default
        return value

    def text(self, d: LineDict, key: str, default: str | None = None) -> str:
        self.ask(d, key)
        value = d.get(key, default)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or (default is None and not value.strip()):
            self.p.error(self.file, d.line_of(key), f"'{key}' must be a text")
            return default or ""
        return value

    def url(self, d: LineDict, key: str, allow_empty: bool = False) -> str:
        value = self.text(d, key, "" if allow_empty else None)
        if value and not URL_RE.match(value):
            self.p.error(self.file, d.line_of(key), f"'{key}' is not a valid web address: {value!r}")
        return value

    def localized(self, d: LineDict, key: str, languages: tuple[str, ...]) -> Localized:
        value = self.ask(d, key)
        if not isinstance(value, LineDict):
            self.p.error(self.file, d.line_of(key), f"'{key}' needs a text per language ({', '.join(languages)})")
            return {lang: "" for lang in languages}
        outer = self.names.get(id(d), "")
        self.block(value, f"'{outer}.{key}'" if outer else f"'{key}'", kind="language")
        out: Localized = {}
        for lang in languages:
            item = self.ask(value, lang)
            if not isinstance(item, str) or not item.strip():
                self.p.error(self.file, value.line_of(lang), f"'{key}' has no '{lang}' text")
                item = ""
            out[lang] = item
        return out

    def items(self, d: LineDict, key: str) -> LineList:
        value = self.ask(d, key)
        if value is None:
            value = LineList()
            value.line = d.line_of(key)
            value.item_lines = []
        if not isinstance(value, LineList):
            self.p.error(self.file, d.line_of(key), f"'{key}' must be a list")
            value = LineList()
            value.line = d.line_of(key)
            value.item_lines = []
        return value


def parse_config(data: Any, file: str = "config.yaml", problems: Problems | None = None) -> Config:
    """Validate parsed config.yaml; every problem goes to `problems` (raises if none was given)."""
    own = problems is None
    p = problems if problems is not None else Problems()
    r = _Reader(file, p)
    if not isinstance(data, LineDict):
        p.error(file, 1, "config.yaml must be a block of settings")
        data = LineDict()
        data.line, data.key_lines = 1, {}
    r.block(data, "")

    raw_langs = r.ask(data, "languages")
    languages: tuple[str, ...] = ("ru", "kk", "en")
    if (
        isinstance(raw_langs, list)
        and raw_langs
        and all(isinstance(x, str) and LANG_RE.match(x) for x in raw_langs)
        and len(set(raw_langs)) == len(raw_langs)
    ):
        languages = tuple(raw_langs)
    else:
        p.error(
            file,
            data.line_of("languages"),
            "'languages' must be a list of two-letter codes, e.g. [ru, kk, en]",
        )
    default_language = r.text(data, "default_language", languages[0])
    if default_language not in languages:
        p.error(file, data.line_of("default_language"), f"'default_language' must be one of {list(languages)}")
        default_language = languages[0]

    m = r.section(data, "matcher", required=False)
    matcher = MatcherConfig(
        answer_threshold=r.number(m, "answer_threshold", 0.60, 0.0, 1.0),
        margin=r.number(m, "margin", 0.06, 0.0, 1.0),
        suggest_threshold=r.number(m, "suggest_threshold", 0.40, 0.0, 1.0),
        min_coverage=r.number(m, "min_coverage", 0.0, 0.0, 1.0),
        max_suggestions=r.integer(m, "max_suggestions", 3, 1, 5),
        suggest_evidence=r.number(m, "suggest_evidence", 2.4, 0.0, 100.0),
        suggest_evidence_fit=r.number(m, "suggest_evidence_fit", 0.7, 0.0, 1.0),
    )
    if matcher.suggest_threshold > matcher.answer_threshold:
        p.error(file, m.line_of("suggest_threshold"), "'suggest_threshold' must not be above 'answer_threshold'")

    s = r.section(data, "storage", required=False)
    storage = StorageConfig(
        database=r.text(s, "database", "komek.sqlite3"),
        retention_days=r.integer(s, "retention_days", 90, 1, 3650),
        model_cache=r.text(s, "model_cache", ""),
    )

    t = r.section(data, "telegram", required=False)
    w = r.section(t, "webhook", required=False)
    webhook = WebhookConfig(
        listen=r.text(w, "listen", "127.0.0.1"),
        port=r.integer(w, "port", 8443, 1, 65535),
        path=r.text(w, "path", "/telegram"),
        public_url=r.url(w, "public_url", allow_empty=True),
    )
    admins: list[int] = []
    for i, item in enumerate(r.items(t, "admins")):
        if isinstance(item, bool) or not isinstance(item, int):
            p.error(file, r.items(t, "admins").line_at(i), "each admin must be a numeric Telegram user id")
        else:
            admins.append(item)
    ops = r.ask(t, "operators_chat")
    if ops is not None and (isinstance(ops, bool) or not isinstance(ops, int)):
        p.error(file, t.line_of("operators_chat"), "'operators_chat' must be a numeric Telegram chat id or null")
        ops = None
    telegram = TelegramConfig(
        flood_messages_per_minute=r.integer(t, "flood_messages_per_minute", 20, 1, 1000),
        webhook=webhook,
        admins=tuple(admins),
        operators_chat=ops,
    )

    contacts = _parse_contacts(r, r.section(data, "contacts"), languages)
    config = Config(
        languages=languages,
        default_language=default_language,
        faq_dir=r.text(data, "faq_dir", "faq"),
        matcher=matcher,
        storage=storage,
        telegram=telegram,
        contacts=contacts,
        source=file,
    )
    r.unknown_keys()
    if own and p.errors:
        raise ContentError(p.errors)
    return config


def _parse_contacts(r: _Reader, c: LineDict, languages: tuple[str, ...]) -> Contacts:
    file, p = r.file, r.p
    o = r.section(c, "office")
    h = r.section(o, "hours")
    tz = r.text(h, "timezone", "Asia/Almaty")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        p.error(file, h.line_of("timezone"), f"unknown time zone {tz!r} (use a name such as Asia/Almaty)")
        tz = "Asia/Almaty"
    days = [str(x) for x in r.items(h, "days")]
    for day in days:
        if day not in DAYS:
            p.error(file, h.line_of("days"), f"unknown day {day!r}: use {', '.join(DAYS)}")
    opening, closing = r.text(h, "open", "09:00"), r.text(h, "close", "18:00")
    for key, value in (("open", opening), ("close", closing)):
        if not TIME_RE.match(value):
            p.error(file, h.line_of(key), f"'{key}' must be a time like 09:00")
    hours = Hours(timezone=tz, days=tuple(d for d in days if d in DAYS), open=opening, close=closing)
    phones = tuple(str(x) for x in r.items(o, "phones"))
    office = Office(
        name=r.localized(o, "name", languages),
        address=r.localized(o, "address", languages),
        phones=phones,
        hours=hours,
    )
    hotline: list[HotlineItem] = []
    raw_hotline = r.items(c, "hotline")
    for i, item in enumerate(raw_hotline):
        if not isinstance(item, LineDict):
            p.error(file, raw_hotline.line_at(i), "each hotline item needs 'label' (per language) and 'value'")
            continue
        r.block(item, f"contacts.hotline item {i + 1}")
        hotline.append(HotlineItem(label=r.localized(item, "label", languages), value=r.text(item, "value")))
    e = r.section(c, "emergency")
    emergency = {key: r.text(e, key) for key in EMERGENCY_KEYS}
    offices: list[AsylumOffice] = []
    raw_offices = r.items(c, "asylum_offices")
    for i, item in enumerate(raw_offices):
        if not isinstance(item, LineDict):
            p.error(file, raw_offices.line_at(i), "each asylum office needs 'city' and 'address'")
            continue
        r.block(item, f"contacts.asylum_offices item {i + 1}")
        offices.append(
            AsylumOffice(city=r.localized(item, "city", languages), address=r.localized(item, "address", languages))
        )
    igo = r.section(c, "igo")
    return Contacts(
        help_site=r.url(c, "help_site"),
        help_asylum=r.url(c, "help_asylum"),
        help_stateless=r.url(c, "help_stateless"),
        office=office,
        hotline=tuple(hotline),
        emergency=emergency,
        asylum_offices=tuple(offices),
        igo_email=r.text(igo, "email"),
        igo_phone=r.text(igo, "phone"),
        legal_aid_site=r.url(c, "legal_aid_site"),
    )


def config_warnings(config: Config, problems: Problems) -> None:
    """Things that do not stop the bot but must be fixed before launch."""
    if not config.contacts.hotline:
        problems.warn(
            config.source,
            1,
            "contacts.hotline is empty: copy the UNHCR hotline numbers from the live contacts page of "
            f"{config.contacts.help_site} before launch ({{hotline}} points to the help site until then)",
        )


def load_config(path: Path, problems: Problems | None = None) -> Config:
    """Read and validate config.yaml. Raises ContentError (all problems) when it is not usable."""
    own = problems is None
    p = problems if problems is not None else Problems()
    shown = str(path)
    try:
        data = read_yaml(path, shown)
    except YamlProblem as exc:
        p.error(exc.path, exc.line, exc.message)
        raise ContentError(p.errors) from None
    for line, where, name in control_characters(data):  # phones and addresses end up in answers
        p.error(
            shown, line, f"{where} holds an invisible control character ({name}), which Telegram refuses: delete it"
        )
    config = parse_config(data, shown, p)
    if own and p.errors:
        raise ContentError(p.errors)
    return config


def database_path(environ: Mapping[str, str], configured: str, config_dir: Path) -> Path:
    """The SQLite file: KOMEK_DB when set (as given), else config.yaml's storage.database, relative
    to config.yaml's folder as faq_dir is, so the bot started from another folder (a service
    manager's) still finds its data. The bot and the staff report must agree on it."""
    from_env = environ.get("KOMEK_DB", "").strip()
    return Path(from_env) if from_env else config_dir / configured


def model_cache_path(environ: Mapping[str, str], storage: StorageConfig, config_dir: Path) -> Path:
    """The folder for the trained ranker's arrays: KOMEK_MODEL_CACHE when set, else config.yaml's
    storage.model_cache (relative to config.yaml's folder), else `komek-cache` beside the database."""
    from_env = environ.get("KOMEK_MODEL_CACHE", "").strip()
    if from_env:
        return Path(from_env)
    if storage.model_cache:
        return config_dir / storage.model_cache
    return database_path(environ, storage.database, config_dir).parent / "komek-cache"
