"""Personal data out of everything we keep or log: who asked what is sensitive for a refugee.

`scrub` replaces phone numbers, e-mails, IINs, document numbers, usernames, t.me links and bot
tokens with tags such as "[phone]", after bringing disguised forms (zero-width spaces, fullwidth
digits, "name(at)gmail.com", a digit at a time) to their plain form; `pseudonym` turns a Telegram
id into a keyed hash so the database never holds the id itself; `RedactingFilter` /
`install_log_redaction` keep the bot token and personal data out of log output. Pure: no file,
network, database or clock.

Every regular expression here is anchored so that a failed attempt cannot restart inside the run
it just scanned (a digit run, an e-mail local part), which keeps `scrub` linear in the input.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import logging
import os
import re
import traceback
from urllib.parse import quote

PHONE, EMAIL, IIN, DOC, USER, LINK, TOKEN = "[phone]", "[email]", "[iin]", "[doc]", "[user]", "[link]", "[token]"

# --- normalising: what hides personal data from the patterns below ----------------------------
#
# People (and copy-paste) write numbers and addresses in ways that slip past plain patterns: a
# zero-width space or a direction mark inside a phone number, fullwidth "＋７ ７０１" or "＠",
# "name(at)gmail(dot)com", "@ ivan". Before scrubbing, such text is brought to its plain form.
# Invisible characters go only where they touch digits, spaces, Latin or Cyrillic letters or "@":
# Persian text keeps its zero-width non-joiners, emoji their joiners.

_INVISIBLE = "\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_NEAR = r"[\s\dA-Za-z\u00c0-\u024f\u0400-\u052f@+.\-()\[\]_]"  # Latin, Cyrillic (Kazakh too), digits
_INVISIBLE_RE = re.compile(rf"(?<={_NEAR})[{_INVISIBLE}]+|[{_INVISIBLE}]+(?={_NEAR})")
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20, 0xFE6B: 0x40}
_OPEN, _CLOSE = r"[\(\[\{<]", r"[\)\]\}>]"
_AT_WORDS = r"(?:at|собака|sobaka)"
_DOT_WORDS = r"(?:dot|точка|tochka)"
# "ivan (at) mail (dot) ru", "ivan[at]mail.ru": bracketed words are never ordinary text
_BRACKET_AT_RE = re.compile(rf"(?<=[\w.+-]) ?{_OPEN} ?{_AT_WORDS} ?{_CLOSE} ?(?=[\w-])", re.IGNORECASE)
_BRACKET_DOT_RE = re.compile(rf"(?<=[\w-]) ?{_OPEN} ?{_DOT_WORDS} ?{_CLOSE} ?(?=[\w-])", re.IGNORECASE)
# "ivan at mail dot ru": plain words only when the whole reads as an address ending in letters
_WORDY_DOT = rf"(?: {_DOT_WORDS} | ?\. ?)"
_WORDY_EMAIL_RE = re.compile(
    rf"(?<![\w.+-])[\w.+-]{{1,64}}(?: {_AT_WORDS} | ?@ ?)[\w-]{{1,63}}"
    rf"(?:{_WORDY_DOT}[\w-]{{1,63}}){{0,3}}{_WORDY_DOT}[^\W\d_]{{2,24}}(?![\w-])",
    re.IGNORECASE,
)
_WORDY_SEP_RE = re.compile(rf" ({_AT_WORDS}|{_DOT_WORDS}) | ?([.@]) ?", re.IGNORECASE)
_LOOSE_AT_RE = re.compile(r"(?<![\w.@])@ +(?=[A-Za-z]\w{2,})")  # "@ ivan_petrov"


def _wordy_email(match: re.Match[str]) -> str:
    def plain(m: re.Match[str]) -> str:
        word = (m.group(1) or m.group(2)).lower()
        return "@" if word in ("at", "собака", "sobaka", "@") else "."

    return _WORDY_SEP_RE.sub(plain, match.group(0))


def normalise(text: str) -> str:
    """The plain form of what hides personal data (see above); idempotent."""
    if not text.isascii():
        text = _INVISIBLE_RE.sub("", text.translate(_FULLWIDTH))
    if "@" in text:
        text = _LOOSE_AT_RE.sub("@", text)
    if any(ch in text for ch in "([{<"):
        text = _BRACKET_DOT_RE.sub(".", _BRACKET_AT_RE.sub("@", text))
    if " " in text and ("@" in text or re.search(_AT_WORDS, text, re.IGNORECASE)):
        text = _WORDY_EMAIL_RE.sub(_wordy_email, text)
    return text


# --- simple patterns, applied in this order (the token before anything that eats digits) ---------

_TOKEN_RE = re.compile(r"(?<!\d)\d{6,}:[A-Za-z0-9_-]{30,}")
_LINK_CHARS = r"[^\s<>()\[\]{}\"'«»]"
_LINK_RE = re.compile(
    r"(?<![\w.])(?:https?://)?(?:www\.)?(?:(?:t|telegram)\.(?:me|dog)/|tg://)"
    rf"(?:{_LINK_CHARS}*[^\s<>()\[\]{{}}\"'«».,;:!?])?",
    re.IGNORECASE,
)
_EMAIL_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL_RE = re.compile(rf"(?<!{_EMAIL_LOCAL}){_EMAIL_LOCAL}+@[\w-]+(?:\.[\w-]+)+")
_USER_RE = re.compile(r"(?<![\w@])@[A-Za-z]\w{2,}")
# A username without its "@": after a word that names it ("мой телеграм aigerim_91", "username:
# ivan"), or any Latin word with an underscore in it (people's texts have none; code identifiers do,
# which is why log redaction leaves this last rule out).
_USER_CUE_RE = re.compile(
    r"(?<![\w@])((nick(?:name)?|username|user_?name|ник|юзернейм|логин|login)|telegram|телеграмм?|телега|tg|тг|"
    r"instagram|инстаграмм?|insta|инста)([\s:=\"'—–-]{1,4}(is |это )?)(?!\[)([A-Za-z][A-Za-z0-9_.]{2,31})(?![\w@])",
    re.IGNORECASE,
)


def _cued_user(m: re.Match[str]) -> str:
    """'ник aigerim', 'telegram: ivan', 'my telegram is ivan', 'tg aigerim_91' → [user]; 'telegram
    channel' stays: after the name of an app only a word said to be the name, or one with a digit or
    an underscore, is taken for a username."""
    word, sep = m.group(5), m.group(3)
    if m.group(2) or m.group(4) or ":" in sep or "=" in sep or re.search(r"[\d_]", word):
        return m.group(0)[: m.start(5) - m.start(0)] + USER
    return m.group(0)


_USER_UNDERSCORE_RE = re.compile(r"(?<![\w@/.\[])[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]*[A-Za-z0-9](?![\w@])")
# A document number with a one- or two-letter series: N12345678, АВ1234567, AB 7654321 (a space only
# after two capitals, so "в 1500000 тенге" stays), № 7654321.
_DOC_LETTERS_RE = re.compile(
    r"(?<!\w)(?:[A-Za-zА-ЯЁа-яёӘҒҚҢӨҰҮҺІәғқңөұүһі]{1,2}|[A-ZА-ЯЁ]{2}[ \u00a0-]|№ ?)\d{6,9}(?!\d)"
)

# --- digit runs: groups of digits joined by phone separators, judged group by group --------------

_SEP = "[ \u00a0\u2009\u202f\\-\u2010-\u2015.()]"
_NUMBERISH_RE = re.compile(rf"(?<!\d)(?:\+[ \u00a0]?)?\(?\d+(?:{_SEP}{{1,4}}\d+)*")
_DIGITS_RE = re.compile(r"\d+")
_SINGLES_RE = re.compile(rf"\d(?:{_SEP}{{1,3}}\d){{6,14}}\)?")  # every digit on its own
_SENTENCE_END = re.compile(r"\.[ \u00a0]")  # a full stop and a space end a number; a phone goes on without one
_MAX_PHONE_GROUPS = 6  # "+7 (701) 123 45 67" has five; a window never needs more


def _is_date(groups: list[str], seps: list[str], k: int) -> bool:
    """12.05.2024, 2024-05-12, 12-05-2024: three groups that read as a date, kept as they are."""
    if k + 2 >= len(groups) or seps[k + 1] != seps[k + 2] or seps[k + 1] not in (".", "-"):
        return False
    a, b, c = groups[k : k + 3]
    if len(a) <= 2 and len(b) <= 2 and (len(c) == 4 or (len(c) == 2 and seps[k + 1] == ".")):
        first, second = int(a), int(b)
    elif len(a) == 4 and len(b) <= 2 and len(c) <= 2:
        first, second = int(c), int(b)
    else:
        return False
    return 1 <= first <= 31 and 1 <= second <= 31 and min(first, second) <= 12


def _classify(groups: list[str], seps: list[str], plus: bool) -> str | None:
    """The tag for one window of consecutive digit groups, or None when it is not personal data."""
    digits = "".join(groups)
    n = len(digits)
    if len(groups) == 1:
        return _one_run(digits, plus) or (DOC if n >= 8 and not plus else None)
    sizes = [len(g) for g in groups]
    if n == 12 and sizes[0] == 6 and not plus:
        return IIN  # 900101 300123, 900101-300-123
    if all(s == 4 and g[:2] in ("19", "20") for g, s in zip(groups, sizes, strict=True)):
        return None  # 1990 2000 2010
    if sizes == [4, 4, 4, 4]:
        return DOC  # a bank card number
    if min(sizes[1:]) < 2 or max(sizes[:-1]) > 4 or sizes[-1] > 10:
        return None  # "1 2 3", "192.168.1.1", a long run that is its own thing
    thousands = not plus and len(set(seps)) == 1 and seps[0] in (" ", "\u00a0", ".")
    if thousands and sizes[0] <= 3 and all(s == 3 for s in sizes[1:]):
        return None  # 1 500 000 тенге
    if plus:
        return PHONE if 7 <= n <= 15 else None
    if 9 <= n <= 15 or (n == 7 and sizes in ([3, 2, 2], [3, 4])):
        return PHONE
    return None


def _spelled_out(digits: str, plus: bool) -> str | None:
    """A number written a digit at a time ("8 7 0 1 1 2 3 4 5 6 7"): a phone or an IIN, never a count."""
    if all(int(b) - int(a) == 1 for a, b in itertools.pairwise(digits)):
        return None  # 1 2 3 4 5 6 7 8 9
    return _one_run(digits, plus)


def _one_run(digits: str, plus: bool) -> str | None:
    """Digits that stand together (one group, or spelled out): a phone after "+" or in the Kazakh
    shapes (8/7 + 10, 7 + 9), an IIN of 12; else None."""
    n = len(digits)
    if plus:
        return PHONE if 7 <= n <= 15 else None
    if n == 12:
        return IIN
    if (n == 11 and digits[0] in "78") or (n == 10 and digits[0] == "7"):
        return PHONE
    return None


def _scrub_numberish(match: re.Match[str]) -> str:
    """Split a digit run into phone / IIN / document windows, leaving dates, years and counts alone."""
    span = match.group(0)
    singles = _SINGLES_RE.fullmatch(span.lstrip("+ \u00a0("))
    if singles is not None:
        tag = _spelled_out("".join(_DIGITS_RE.findall(span)), span.startswith("+"))
        if tag is not None:
            return tag
    spots = [(m.start(), m.end()) for m in _DIGITS_RE.finditer(span)]
    groups = [span[a:b] for a, b in spots]
    seps = [""] + [span[spots[i - 1][1] : spots[i][0]] for i in range(1, len(spots))]
    protected = [False] * len(groups)
    for k in range(len(groups)):
        if _is_date(groups, seps, k):
            protected[k] = protected[k + 1] = protected[k + 2] = True
    plus = span.startswith("+")
    out: list[str] = []
    i = 0
    while i < len(groups):
        lead = span[: spots[0][0]] if i == 0 else seps[i]
        tag, end = None, i
        if not protected[i]:
            last = i
            while (
                last + 1 < len(groups)
                and last + 1 - i < _MAX_PHONE_GROUPS
                and not protected[last + 1]
                and not _SENTENCE_END.match(seps[last + 1])  # "статья 100. 100 000 тенге": two numbers
            ):
                last += 1
            for end in range(last, i - 1, -1):  # the longest window that reads as personal data wins
                tag = _classify(groups[i : end + 1], seps[i + 1 : end + 1], plus and i == 0)
                if tag is not None:
                    break
        if tag is None:
            out.append(lead + groups[i])
            i += 1
            continue
        out.append(tag if i == 0 else lead + tag)
        i = end + 1
    return "".join(out)


def _scrub_once(text: str, identifiers: bool) -> str:
    text = _TOKEN_RE.sub(TOKEN, text)
    text = _LINK_RE.sub(LINK, text)
    text = _EMAIL_RE.sub(EMAIL, text)
    text = _USER_RE.sub(USER, text)
    text = _USER_CUE_RE.sub(_cued_user, text)
    if identifiers:
        text = _USER_UNDERSCORE_RE.sub(USER, text)
    text = _DOC_LETTERS_RE.sub(DOC, text)
    return _NUMBERISH_RE.sub(_scrub_numberish, text)


def scrub(text: str, identifiers: bool = True) -> str:
    """Replace personal data with tags; idempotent, linear time, never raises.

    The text is normalised first (see `normalise`), so a zero-width space, fullwidth digits or
    "(at)" hide nothing. A replacement can expose a neighbour ("87011234567@name" → "[phone]@name"),
    so passes repeat until nothing changes (two passes in practice). `identifiers=False` keeps Latin
    words with an underscore (for logs, where they are function names). Should anything unexpected
    go wrong, every digit and "@" is blanked rather than letting the text through.
    """
    try:
        text = normalise(text)
        for _ in range(4):
            scrubbed = _scrub_once(text, identifiers)
            if scrubbed == text:
                break
            text = scrubbed
        return text
    except Exception:
        return re.sub(r"[\d@]", "#", str(text))


def pseudonym(user_id: int, key: bytes) -> str:
    """A stable stand-in for a Telegram id: HMAC-SHA256 keyed with our secret, 32 hex characters.

    Keyed, so nobody without the key can test a known id against the database.
    """
    return hmac.new(key, str(user_id).encode("ascii"), hashlib.sha256).hexdigest()[:32]


class RedactingFilter(logging.Filter):
    """Rewrites each record so that secrets never appear and personal data is scrubbed.

    Used as a handler filter (handler filters see every record, also ones propagated from child
    loggers such as "telegram.ext"). The record is rendered once here, so a format string whose
    args do not match cannot raise later in the handler.
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        variants = {v for s in secrets if len(s) >= 4 for v in (s, quote(s, safe=""), quote(s))}
        self._secrets = sorted(variants, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Secrets out first (they need not look like a token), then the generic scrub."""
        for secret in self._secrets:
            text = text.replace(secret, "[secret]")
        return scrub(text, identifiers=False)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # args that do not fit the format: keep both, rendered plainly
            message = f"{record.msg!s} {record.args!r}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_log_redaction(secrets: list[str]) -> RedactingFilter:
    """Put one RedactingFilter on every handler there is, and quiet httpx (it logs token URLs).

    Root gets a stderr handler if it has none, so nothing is ever logged unfiltered. Handlers
    added later must take the returned filter: `handler.addFilter(f)`.
    """
    redactor = RedactingFilter(secrets)
    root = logging.getLogger()
    if not root.handlers:
        fallback = logging.StreamHandler()
        fallback.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(fallback)
    loggers = [root, *(x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(old)
            handler.addFilter(redactor)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return redactor


# ---------------------------------------------------------------- sealed chat references

_SEAL_TAG = 8


def seal(chat_id: int, key: bytes, nonce: bytes | None = None) -> str:
    """Encrypt a chat id for the few opt-in features that must write back to a user later
    (announcements, a person's reply). Without KOMEK_SECRET the database shows only noise."""
    nonce = nonce if nonce is not None else os.urandom(8)
    data = str(int(chat_id)).encode()
    stream = hmac.new(key, b"seal:" + nonce, hashlib.sha256).digest()
    cipher = bytes(a ^ b for a, b in zip(data, stream, strict=False))
    tag = hmac.new(key, b"tag:" + nonce + cipher, hashlib.sha256).digest()[:_SEAL_TAG]
    return base64.urlsafe_b64encode(nonce + cipher + tag).decode()


def unseal(token: str, key: bytes) -> int | None:
    """The chat id inside a seal, or None when the seal is damaged or made with another key."""
    try:
        raw = base64.urlsafe_b64decode(token.encode())
    except (ValueError, TypeError):
        return None
    if len(raw) < 8 + 1 + _SEAL_TAG:
        return None
    nonce, cipher, tag = raw[:8], raw[8:-_SEAL_TAG], raw[-_SEAL_TAG:]
    expected = hmac.new(key, b"tag:" + nonce + cipher, hashlib.sha256).digest()[:_SEAL_TAG]
    if not hmac.compare_digest(tag, expected):
        return None
    stream = hmac.new(key, b"seal:" + nonce, hashlib.sha256).digest()
    try:
        return int(bytes(a ^ b for a, b in zip(cipher, stream, strict=False)).decode())
    except ValueError:
        return None
